import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../../src/system/exec.js";
import { TEST_IMAGE, TEST_LABEL } from "../../support/docker.js";
import { useScope } from "../../support/scope.js";
import { resticRepository, sidecar, startSidecar, world } from "../harness.js";

const running = async (name: string) =>
  (await run("docker", ["inspect", "--format", "{{.State.Running}}", name])).stdout.trim();

/** PIDs of live processes whose environment names this repository (restic runs the sidecar started). */
async function resticProcessesOf(repoDir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const environ = await readFile(`/proc/${entry}/environ`).catch(() => Buffer.alloc(0));
    const comm = await readFile(`/proc/${entry}/comm`, "utf8").catch(() => "");
    if (comm.trim() === "restic" && environ.includes(`RESTIC_REPOSITORY=${repoDir}\0`))
      found.push(Number(entry));
  }
  return found;
}

describe("backrest-sidecar backup-once never reports success with a container left stopped", () => {
  const scope = useScope();

  it("a quiesced container that cannot start again: the others are started, exit 1, the last line names it", async () => {
    const w = await world(scope);
    const { env } = await resticRepository(scope);
    const data = await w.volume("appdata");
    const app = await w.container(
      "app",
      { "restic-compose-backup.volumes": "true", "restic-compose-backup.quiesce": "true" },
      [`${data}:/data`],
      { start: true, command: ["sh", "-c", "head -c 20000000 /dev/urandom > /data/blob; exec sleep 3600"] },
    );
    // A second quiesced service whose bind mount source disappears during the backup (--mount: the
    // engine refuses to start it without its source, as it would after a host disk went away).
    const source = await scope.tempDir("stowage-sidecar-bind-");
    const fragile = `${w.marker}-fragile`;
    await run("docker", [
      "run",
      "-d",
      "--name",
      fragile,
      "--network",
      "none",
      "--label",
      TEST_LABEL,
      "--label",
      `io.stowage.test.world=${w.marker}`,
      "--label",
      "restic-compose-backup.quiesce=true",
      "--mount",
      `type=bind,source=${source},target=/conf`,
      TEST_IMAGE,
      "sleep",
      "3600",
    ]);
    scope.defer(`remove ${fragile}`, () => run("docker", ["rm", "-f", fragile]));
    let removed = false;
    const child = startSidecar(["backup-once", ...w.only, "--stop-timeout", "1"], env, (line) => {
      if (line.action === "backup.workload" && !removed) {
        removed = true;
        void rm(source, { recursive: true, force: true });
      }
    });
    const result = await child.output;
    expect(removed).toBe(true);
    expect(result.status, result.stderr).toBe(1);
    const last = result.stderr.trim().split("\n").at(-1) ?? "";
    expect(last).toMatch(
      new RegExp(`^backrest-sidecar: container ${fragile} was stopped and could not be started again: `),
    );
    expect(await running(app)).toBe("true");
    expect(await running(fragile)).toBe("false");
    expect(result.stderr).toContain('"action":"quiesce.start-failed"');
    // Its backup did happen; its forget still ran.
    expect(result.stderr).toContain('"action":"forget"');
  });

  it("SIGTERM during the backup: restic is stopped and awaited, the container is started, exit 143, no forget", async () => {
    const w = await world(scope);
    const { env, repoDir, restic } = await resticRepository(scope);
    const data = await w.volume("big");
    const app = await w.container(
      "app",
      { "restic-compose-backup.volumes": "true", "restic-compose-backup.quiesce": "true" },
      [`${data}:/data`],
      { start: true, command: ["sh", "-c", "head -c 1500000000 /dev/urandom > /data/blob; exec sleep 3600"] },
    );
    // The container's data is written before the backup starts.
    for (let i = 0; i < 600; i++) {
      const size = (
        await run("docker", ["exec", app, "sh", "-c", "stat -c %s /data/blob 2>/dev/null || echo 0"])
      ).stdout.trim();
      if (size === "1500000000") break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    let signalledAt = 0;
    let signalling = false;
    // Signalled once restic holds its lock (a file in locks/, then half a second): a SIGTERM while
    // restic is still creating its lock is restic's own race, not what this test is about.
    const signalWhenLocked = async () => {
      for (let i = 0; i < 300 && signalledAt === 0; i++) {
        const locks = await readdir(path.join(repoDir, "locks")).catch(() => []);
        if (locks.length > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      signalledAt = Date.now();
      child.kill("SIGTERM");
    };
    const child = startSidecar(["backup-once", ...w.only, "--stop-timeout", "1"], env, (line) => {
      if (line.action === "backup.workload" && !signalling) {
        signalling = true;
        void signalWhenLocked();
      }
    });
    const result = await child.output;
    // Looked at the moment the sidecar is gone: restic was stopped and awaited, not left running.
    const leftRunning = await resticProcessesOf(repoDir);
    expect(signalledAt).toBeGreaterThan(0);
    expect(Date.now() - signalledAt).toBeLessThan(5_000);
    expect(result.status, result.stderr).toBe(143);
    expect(result.stderr).toContain('"action":"backup.signal"');
    expect(result.stderr).not.toContain('"action":"forget"');
    expect(leftRunning).toEqual([]);
    // restic ended cleanly (its SIGTERM handling), so it left no stale lock in the repository.
    expect((await restic.run(["list", "locks", "--no-lock"])).stdout.trim()).toBe("");
    expect(await running(app)).toBe("true");
  });
});

describe("backrest-sidecar backup-once: what it is given is what it does", () => {
  const scope = useScope();

  it("flags of other subcommands are usage errors; an unreachable engine is exit 1 naming the socket", async () => {
    for (const flag of [
      ["--default-schedule", "@daily"],
      ["--apply"],
      ["--interval", "5s"],
      ["--keep-orphans"],
    ]) {
      const result = await sidecar(["backup-once", ...flag], {
        RESTIC_REPOSITORY: "/x",
        RESTIC_PASSWORD: "x",
      });
      expect([result.status, result.stderr]).toEqual([
        2,
        expect.stringContaining(`unknown option '${flag[0]}'`),
      ]);
    }
    const dir = await scope.tempDir("stowage-sidecar-sock-");
    const socket = path.join(dir, "docker.sock");
    for (const command of [
      ["backup-once"],
      ["reconcile", "--config", path.join(dir, "c.json")],
      ["status"],
    ]) {
      const result = await sidecar([...command, "--docker-sock", socket], {
        RESTIC_REPOSITORY: "/x",
        RESTIC_PASSWORD: "x",
      });
      expect(result.status, result.stderr).toBe(1);
      expect(result.stderr).toContain(`cannot reach the Docker engine at ${socket}`);
    }
  });

  it("a workload without backrest.keep gets the default retention, as its Backrest plan does", async () => {
    const w = await world(scope);
    const { env } = await resticRepository(scope);
    const data = await w.volume("d");
    await w.container(
      "plain",
      { "restic-compose-backup.volumes": "true", "com.docker.compose.service": "plain" },
      [`${data}:/data`],
    );
    const byDefault = await sidecar(["backup-once", ...w.only], env);
    expect(byDefault.status, byDefault.stderr).toBe(0);
    const forget = byDefault.logs.find((l) => l.action === "forget");
    expect(forget).toMatchObject({
      path: "/volumes/plain",
      flags: ["--keep-daily", "7", "--keep-weekly", "4"],
    });
    const given = await sidecar(["backup-once", ...w.only, "--default-retention", "last=2"], env);
    expect(given.logs.find((l) => l.action === "forget")).toMatchObject({ flags: ["--keep-last", "2"] });
  });

  it("a workload whose mount cannot be made fails alone, with no snapshot; the others are backed up (exit 3)", async () => {
    const w = await world(scope);
    const { env, restic } = await resticRepository(scope);
    const data = await w.volume("good");
    await w.container(
      "good",
      { "restic-compose-backup.volumes": "true", "com.docker.compose.service": "good" },
      [`${data}:/data`],
      {
        start: true,
        command: ["sh", "-c", "echo ok > /data/file; exec sleep 3600"],
      },
    );
    const source = await scope.tempDir("stowage-sidecar-gone-");
    await mkdir(path.join(source, "sub"));
    await writeFile(path.join(source, "sub", "file"), "x\n");
    await w.container(
      "broken",
      { "restic-compose-backup.volumes": "true", "com.docker.compose.service": "broken" },
      [`${path.join(source, "sub")}:/conf`],
    );
    await rm(path.join(source, "sub"), { recursive: true });
    const hadVolumes = (await readdir("/")).includes("volumes");
    const result = await sidecar(["backup-once", ...w.only], env);
    expect(result.status, result.stderr).toBe(3);
    expect(result.stdout).toMatch(
      new RegExp(`^${w.marker}-broken .* FAILED: mount source .* does not exist`, "m"),
    );
    expect(result.stderr).toContain("does not exist");
    const snapshots = await restic.json<Array<{ paths: string[] }>>(["snapshots"]);
    expect(snapshots.map((s) => s.paths)).toEqual([["/volumes/good"]]);
    // Nothing is left on the host: a /volumes made for the run does not stay behind.
    expect((await readdir("/")).includes("volumes")).toBe(hadVolumes);
  });
});
