import { readFile } from "node:fs/promises";
import path from "node:path";
import { expect, it } from "vitest";
import { describeWithBackrest, type RunningBackrest, startBackrestWithRepo } from "../../support/backrest.js";
import { httpSink } from "../../support/http-sink.js";
import { useScope } from "../../support/scope.js";
import { fillVolume, resticEnvFile, sidecar, world } from "../harness.js";

type Json = Record<string, unknown>;

const planIdOf = (marker: string, name: string) => `backrest_sidecar_${marker.replaceAll("-", "_")}_${name}`;

/**
 * Backrest follows a backup with its own forget, under an exclusive lock of the repository: wait
 * until it is done, as a person would before running backup-once (the restic 0.14 on PATH here
 * has no --retry-lock: beside that lock it fails, naming it). A pending backup is the plan's next
 * scheduled run, not work under way.
 */
async function backrestDone(backrest: RunningBackrest, planId: string): Promise<void> {
  for (let i = 0; ; i++) {
    const answer = await backrest.ok("GetOperations", { selector: { planId } });
    const busy = ((answer.operations as Json[] | undefined) ?? []).some(
      (op) =>
        op.status === "STATUS_INPROGRESS" || (op.status === "STATUS_PENDING" && !("operationBackup" in op)),
    );
    if (!busy) return;
    if (i > 300) throw new Error("Backrest's operations after the backup did not end within 30 s");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describeWithBackrest("a workload's backups show in Backrest, and its labels' notifications are sent", () => {
  const scope = useScope();

  it("backup-once's snapshot is listed by Backrest under the workload's plan, beside Backrest's own run", async () => {
    const { backrest, repoDir, password } = await startBackrestWithRepo(scope);
    const w = await world(scope);
    const volume = await w.volume("files");
    await fillVolume(volume, "echo one > /data/a");
    await w.container("files", { "backrest.enable": "true", "restic-compose-backup.volumes": "true" }, [
      `${volume}:/data`,
    ]);
    expect((await sidecar(["reconcile", "--backrest-url", backrest.url, ...w.only])).status).toBe(0);
    const id = planIdOf(w.marker, "files");
    expect((await backrest.call("Backup", { value: id })).status, await backrest.log()).toBe(200);
    await backrestDone(backrest, id);

    const envFile = await resticEnvFile(scope, repoDir, password);
    const dir = await scope.tempDir("stowage-backrest-visible-");
    const report = path.join(dir, "report.json");
    const once = await sidecar([
      "backup-once",
      "--backrest-url",
      backrest.url,
      "--rcb-env-file",
      envFile,
      "--report",
      report,
      "--no-forget",
      ...w.only,
    ]);
    expect(once.status, once.stderr).toBe(0);
    const made = (JSON.parse(await readFile(report, "utf8")) as { workloads: Array<{ snapshots: string[] }> })
      .workloads[0]?.snapshots[0] as string;
    const listed = (await backrest.ok("ListSnapshots", { repoId: "default", planId: id })) as {
      snapshots: Json[];
    };
    const ids = listed.snapshots.map((s) => String(s.id));
    expect(ids).toHaveLength(2);
    expect(ids.some((s) => s.startsWith(made))).toBe(true);
    const ours = listed.snapshots.find((s) => String(s.id).startsWith(made)) as Json;
    const instance = (await backrest.ok("GetConfig")).instance as string;
    expect(ours.tags).toEqual(
      expect.arrayContaining([`plan:${id}`, `created-by:${instance}`, `container:${w.marker}-files`]),
    );
    expect((ours.tags as string[]).some((t) => t.startsWith("run:"))).toBe(true);
  });

  it("Backrest calls a notify label's URL and pings its healthchecks URL; backup-once calls the same ones", async () => {
    const { backrest, repoDir, password } = await startBackrestWithRepo(scope);
    const sink = await httpSink(scope);
    const w = await world(scope);
    await w.container(
      "app",
      {
        "backrest.enable": "true",
        "restic-compose-backup.volumes": "true",
        "backrest.notify": `http://bot:s3cret@${sink.base.slice("http://".length)}/notify?token=tok`,
        "backrest.healthchecks": `${sink.base}/hc/8f1a`,
      },
      ["/etc/hostname:/data/hostname"],
    );
    const reconcile = await sidecar(["reconcile", "--backrest-url", backrest.url, ...w.only]);
    expect(reconcile.status, reconcile.stderr).toBe(0);
    expect(reconcile.stderr.split("\n").filter((l) => l.includes("s3cret"))).toEqual([]);
    expect((await backrest.call("Backup", { value: planIdOf(w.marker, "app") })).status).toBe(200);
    const byBackrest = sink.requests.map((r) => `${r.method} ${r.path.replace(/\?.*/, "")}`);
    expect(byBackrest).toEqual(
      expect.arrayContaining(["POST /notify", "POST /hc/8f1a/start", "POST /hc/8f1a"]),
    );
    const notified = sink.requests.filter((r) => r.path.startsWith("/notify"));
    expect(notified.length).toBeGreaterThanOrEqual(2); // start and success
    expect(notified[0]?.authorization).toBe(`Basic ${Buffer.from("bot:s3cret").toString("base64")}`);

    await backrestDone(backrest, planIdOf(w.marker, "app"));
    sink.requests.length = 0;
    const envFile = await resticEnvFile(scope, repoDir, password);
    const once = await sidecar([
      "backup-once",
      "--backrest-url",
      backrest.url,
      "--rcb-env-file",
      envFile,
      "--no-forget",
      ...w.only,
    ]);
    expect(once.status, once.stderr).toBe(0);
    expect(once.stderr).not.toContain("s3cret");
    expect(once.stderr).not.toContain("8f1a");
    expect(sink.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      "POST /hc/8f1a/start",
      "POST /hc/8f1a",
      "POST /notify?token=tok",
    ]);
    const report = JSON.parse(sink.requests[2]?.body ?? "{}") as { workloads: Json[] };
    expect(report.workloads).toEqual([
      expect.objectContaining({ workload: `${w.marker}-app`, status: "ok" }),
    ]);
  });
});
