import { once } from "node:events";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { expect, it } from "vitest";
import { run } from "../../../src/system/exec.js";
import { readMountinfo } from "../../../src/system/mountinfo.js";
import {
  BACKREST_RESTIC_BIN,
  describeWithBackrest,
  type RunningBackrest,
  startBackrestWithRepo,
} from "../../support/backrest.js";
import { createLoopBtrfs } from "../../support/btrfs.js";
import { ensureDatabaseImage } from "../../support/databases.js";
import { type TestScope, useScope } from "../../support/scope.js";
import { resticEnvFile, SIDECAR_ENV, sidecar, startSidecar, world } from "../harness.js";

type Json = Record<string, unknown>;

/** A writer that appends to a log in one subvolume and writes the same counter into another, forever. */
const WRITER = [
  "sh",
  "-c",
  'trap "exit 0" TERM; i=0; while :; do i=$((i+1)); echo $i >> /data/log; echo $i > /state/count; sleep 0.02; done',
];
const IDLE = ["sh", "-c", 'trap "exit 0" TERM; while :; do sleep 0.1; done'];
const STATE_DIR = SIDECAR_ENV.BACKREST_SIDECAR_STATE_DIR as string;

const planIdOf = (name: string) => `backrest_sidecar_${name.replaceAll("-", "_")}`;
const sh = (script: string) => run("sh", ["-c", script]);

/** The sidecar's daemon with its endpoint, on a real Backrest's API; stopped after the test. */
async function daemon(scope: TestScope, backrest: RunningBackrest, only: string[], interval = "1h") {
  const dir = await scope.tempDir("stowage-consistent-");
  const socket = path.join(dir, "sidecar.sock");
  const volumesRoot = path.join(dir, "volumes");
  const args = ["--backrest-url", backrest.url, "--socket", socket, "--volumes-root", volumesRoot, ...only];
  const logs: Json[] = [];
  const child = startSidecar(
    ["daemon", "--with-events", "--interval", interval, "--stop-timeout", "5", ...args],
    {},
    (l) => logs.push(l),
  );
  scope.defer("stop the daemon", async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
  });
  const until = async (what: string, check: () => boolean | Promise<boolean>, ms = 30_000) => {
    const start = Date.now();
    while (!(await check())) {
      if (Date.now() - start > ms)
        throw new Error(`${what} not within ${ms} ms: ${JSON.stringify(logs.slice(-5))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await until("the first reconcile", () => logs.some((l) => l.action === "reconcile.complete"));
  return { socket, volumesRoot, args, logs, until, child };
}

/** Seconds between a container's stop (kill/die) and its start again, from Docker's own events. */
async function downtimes(container: string, since: number): Promise<Array<{ from: number; to: number }>> {
  const text = (
    await run("docker", [
      "events",
      "--since",
      String(since / 1000),
      "--until",
      String(Date.now() / 1000),
      "--filter",
      `container=${container}`,
      "--format",
      "{{.TimeNano}} {{.Action}}",
    ])
  ).stdout;
  const windows: Array<{ from: number; to: number }> = [];
  let down: number | undefined;
  for (const [time, action] of text
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(" "))) {
    const at = Number(BigInt(time as string) / 1_000_000n);
    if ((action === "kill" || action === "die" || action === "stop") && down === undefined) down = at;
    if (action === "start" && down !== undefined) {
      windows.push({ from: down, to: at });
      down = undefined;
    }
  }
  return windows;
}

/** Nothing of a snapshot plan is left: no mount under the volumes root or the sessions, no snapshot. */
async function nothingLeft(volumesRoot: string, btrfsMount: string) {
  const mounts = (await readMountinfo()).map((m) => m.mountPoint);
  expect(
    mounts.filter((m) => m.startsWith(volumesRoot) || m.startsWith(path.join(STATE_DIR, "sessions"))),
  ).toEqual([]);
  expect((await run("btrfs", ["subvolume", "list", btrfsMount])).stdout).not.toContain(".stowage-snap-");
  const journal = path.join(STATE_DIR, "journal");
  const left = (await run("ls", ["-A", journal], { okStatuses: [0, 2] })).stdout.split("\n").filter(Boolean);
  expect(left).toEqual([]);
}

/** A workload with 900 MB in a btrfs subvolume: a backup of it takes long enough to be cut. */
async function bigWorkload(
  scope: TestScope,
  w: Awaited<ReturnType<typeof world>>,
  labels: Record<string, string>,
) {
  const fs = await createLoopBtrfs(scope, { sizeMiB: 2048 });
  await sh(
    `btrfs -q subvolume create ${fs.mountPoint}/@big && head -c 900000000 /dev/urandom > ${fs.mountPoint}/@big/blob`,
  );
  const big = await w.container(
    "big",
    { "backrest.enable": "true", ...labels },
    [`${fs.mountPoint}/@big:/data`],
    {
      start: true,
      command: IDLE,
    },
  );
  return { fs, big };
}

function resticOf(repoDir: string, password: string) {
  const env = {
    ...process.env,
    RESTIC_REPOSITORY: repoDir,
    RESTIC_PASSWORD: password,
    // Inside the repository dir (the test scope removes it), as the harness keeps its own.
    RESTIC_CACHE_DIR: path.join(repoDir, ".cache"),
  };
  return async (args: string[]) =>
    (
      await run(BACKREST_RESTIC_BIN as string, [...args, "--retry-lock", "2m"], {
        env,
        maxStdoutBytes: 64 << 20,
      })
    ).stdout;
}

describeWithBackrest(
  "the consistent backup in the plans Backrest runs (real Backrest v1.14.1, btrfs, Docker)",
  () => {
    const scope = useScope();

    it("a snapshot plan: containers down only for the snapshot instant (dependants first), restic reads one instant, nothing left", async () => {
      const { backrest, repoDir, password } = await startBackrestWithRepo(scope);
      const w = await world(scope);
      const fs = await createLoopBtrfs(scope, { sizeMiB: 1024 });
      const mnt = fs.mountPoint;
      await sh(`btrfs -q subvolume create ${mnt}/@app && btrfs -q subvolume create ${mnt}/@state`);
      await sh(`head -c 300000000 /dev/urandom > ${mnt}/@app/blob`);
      const state = await w.volume("state", `${mnt}/@state`);
      const app = await w.container(
        "app",
        {
          "backrest.enable": "true",
          "restic-compose-backup.quiesce": "true",
          "com.docker.compose.service": "app",
        },
        [`${mnt}/@app:/data`, `${state}:/state`],
        { start: true, command: WRITER },
      );
      const web = await w.container(
        "web",
        {
          "restic-compose-backup.quiesce": "true",
          "com.docker.compose.service": "web",
          "com.docker.compose.depends_on": "app:service_started:false",
        },
        [],
        { start: true, command: IDLE },
      );
      const d = await daemon(scope, backrest, w.only);
      const status = await sidecar(["status", "--json", ...d.args]);
      expect(JSON.parse(status.stdout)).toEqual([
        expect.objectContaining({ container: app, mode: "snapshot", state: "planned" }),
      ]);
      const id = planIdOf("app");
      const plan = ((await backrest.ok("GetConfig")).plans as Json[]).find((p) => p.id === id);
      expect(plan?.paths).toEqual([path.join(d.volumesRoot, "app")]);

      const began = Date.now();
      const answer = await backrest.call("Backup", { value: id });
      const took = Date.now() - began;
      expect(answer.status, await backrest.log()).toBe(200);
      const appDown = await downtimes(app, began - 1000);
      const webDown = await downtimes(web, began - 1000);
      expect(appDown).toHaveLength(1);
      expect(webDown).toHaveLength(1);
      const [a, b] = [appDown[0] as { from: number; to: number }, webDown[0] as { from: number; to: number }];
      // Dependants stop first and start last; both were down for the snapshot, not for the backup.
      expect(b.from).toBeLessThanOrEqual(a.from);
      expect(b.to).toBeGreaterThanOrEqual(a.to);
      expect(a.to - a.from).toBeLessThan(took / 2);

      const restic = resticOf(repoDir, password);
      const snapshots = JSON.parse(await restic(["snapshots", "--json"])) as Array<{
        id: string;
        paths: string[];
        tags: string[];
      }>;
      expect(snapshots.map((s) => s.paths)).toEqual([[path.join(d.volumesRoot, "app")]]);
      expect(snapshots[0]?.tags).toContain(`plan:${id}`);
      const target = await scope.tempDir("stowage-consistent-restore-");
      await restic(["restore", "latest", "--target", target]);
      const restored = path.join(target, d.volumesRoot, "app");
      // One instant across both subvolumes: the writer's log ends with the counter it wrote last.
      const log = (await readFile(path.join(restored, "data", "log"), "utf8")).trim().split("\n");
      expect(log.at(-1)).toBe((await readFile(path.join(restored, "state", "count"), "utf8")).trim());
      expect((await stat(path.join(restored, "data", "blob"))).size).toBe(300000000);
      await nothingLeft(d.volumesRoot, mnt);
    });

    it("a PostgreSQL dump plan stores the dump its own client made, and restore loads it back", async () => {
      const image = await ensureDatabaseImage("postgres");
      const { backrest, repoDir, password } = await startBackrestWithRepo(scope);
      const w = await world(scope);
      const pg = await w.container(
        "pg",
        { "backrest.enable": "true", "restic-compose-backup.postgres": "true" },
        [],
        { start: true, image, env: { POSTGRES_PASSWORD: "pg-secret-7" } },
      );
      const psql = (sql: string) =>
        run("docker", ["exec", "-u", "postgres", pg, "psql", "-X", "-q", "-At", "-c", sql], {
          okStatuses: [0, 1, 2],
        });
      for (let i = 0; (await psql("select 1")).status !== 0; i++) {
        if (i > 240) throw new Error("postgres did not start");
        await new Promise((r) => setTimeout(r, 500));
      }
      await psql("create table kept as select g as n, md5(g::text) as t from generate_series(1, 5000) g");
      const d = await daemon(scope, backrest, w.only);
      const id = planIdOf(pg);
      const plan = ((await backrest.ok("GetConfig")).plans as Json[]).find((p) => p.id === id);
      expect(plan?.paths).toBeUndefined();
      expect(plan?.backup_flags).toContain(`/databases/${pg}/all.sql`);
      expect((await backrest.call("Backup", { value: id })).status, await backrest.log()).toBe(200);
      const restic = resticOf(repoDir, password);
      const dump = await restic(["dump", "latest", `/databases/${pg}/all.sql`]);
      expect(dump).toContain("CREATE TABLE public.kept");
      expect(dump).not.toContain("pg-secret-7");

      await psql("drop table kept");
      const env = await resticEnvFile(scope, repoDir, password);
      const restored = await sidecar(["restore", pg, "--rcb-env-file", env, ...w.only]);
      expect(restored.status, restored.stderr).toBe(0);
      expect((await psql("select count(*) from kept")).stdout.trim()).toBe("5000");
      expect(d.logs.some((l) => l.action === "dump.sent")).toBe(true);
    });

    it("a dump that fails half-way makes Backrest's operation fail, with no snapshot", async () => {
      const { backrest, repoDir, password } = await startBackrestWithRepo(scope);
      const w = await world(scope);
      // A "client" that prints 200 kB of a dump, then fails: as a server that dies mid-dump.
      const broken = await w.container(
        "maria",
        { "backrest.enable": "true", "restic-compose-backup.mariadb": "true" },
        [],
        {
          start: true,
          command: [
            "sh",
            "-c",
            "printf '%s\\n' '#!/bin/sh' 'head -c 200000 /dev/zero' 'echo dump failed >&2' 'exit 3' > /bin/mysqldump && chmod +x /bin/mysqldump && trap 'exit 0' TERM && while :; do sleep 0.1; done",
          ],
        },
      );
      await daemon(scope, backrest, w.only);
      const id = planIdOf(broken);
      const answer = await backrest.call("Backup", { value: id });
      expect(answer.status).toBe(500);
      const operations = (await backrest.ok("GetOperations", { selector: { planId: id } }))
        .operations as Json[];
      const runs = operations.filter((o) => "operationBackup" in o && o.status !== "STATUS_PENDING");
      expect(runs.map((o) => o.status)).toEqual(["STATUS_ERROR"]);
      // restic saw the command fail (curl's cut transfer: exit 18) and saved nothing.
      expect(String(runs[0]?.displayMessage)).toMatch(/curl: \(18\)|exit status 18/);
      const restic = resticOf(repoDir, password);
      expect(JSON.parse(await restic(["snapshots", "--json"]))).toEqual([]);
    });

    it("Backrest killed with kill -9 mid-backup, then recover: containers running, no snapshot or mount left", async () => {
      const { backrest } = await startBackrestWithRepo(scope);
      const w = await world(scope);
      const { fs, big } = await bigWorkload(scope, w, { "restic-compose-backup.quiesce": "true" });
      const d = await daemon(scope, backrest, w.only);
      void backrest.call("Backup", { value: planIdOf(big) }).catch(() => {});
      await d.until(
        "the snapshot mounted",
        () => d.logs.some((l) => l.action === "session.prepared"),
        60_000,
      );
      await backrest.kill9();
      const recovered = await sidecar(["recover", "--socket", d.socket, ...w.only]);
      expect(recovered.status, recovered.stderr).toBe(0);
      expect(recovered.stdout).toContain(`finished 1 prepared plan(s) (${planIdOf(big)})`);
      expect((await run("docker", ["inspect", "--format", "{{.State.Running}}", big])).stdout.trim()).toBe(
        "true",
      );
      await nothingLeft(d.volumesRoot, fs.mountPoint);
    });

    it("Backrest crashed mid-backup and started again (no end hook came): the daemon finishes the plan once Backrest says its backup is over", async () => {
      const { backrest } = await startBackrestWithRepo(scope);
      const w = await world(scope);
      const { fs, big } = await bigWorkload(scope, w, {});
      const d = await daemon(scope, backrest, w.only, "2s");
      void backrest.call("Backup", { value: planIdOf(big) }).catch(() => {});
      await d.until(
        "the snapshot mounted",
        () => d.logs.some((l) => l.action === "session.prepared"),
        60_000,
      );
      await backrest.kill9();
      // Not finished while Backrest does not answer: nobody can tell whether the backup still runs.
      await new Promise((r) => setTimeout(r, 5_000));
      expect(
        d.logs.filter((l) => l.action === "session.finished" || String(l.action).startsWith("hook")),
        await backrest.log(),
      ).toEqual([expect.objectContaining({ action: "hook.prepare" })]);
      await backrest.start();
      await d.until("the plan finished", () => d.logs.some((l) => l.action === "session.finished"), 60_000);
      expect(d.logs.find((l) => l.action === "session.finished")?.reason).toBe("its backup is over");
      await nothingLeft(d.volumesRoot, fs.mountPoint);
    });

    it("the endpoint is a Unix socket only root may use: another user is refused, nothing listens on the network", async () => {
      const { backrest } = await startBackrestWithRepo(scope);
      const w = await world(scope);
      const d = await daemon(scope, backrest, w.only);
      expect(((await stat(d.socket)).mode & 0o777).toString(8)).toBe("600");
      const url = "http://backrest-sidecar/v1/recover";
      const nobody = await run(
        "setpriv",
        [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          "curl",
          "-sS",
          "--unix-socket",
          d.socket,
          "-X",
          "POST",
          url,
        ],
        { okStatuses: [0, 7] },
      );
      expect(nobody.status).toBe(7);
      expect(nobody.stderr).toMatch(/Permission denied|Couldn't connect/);
      const root = await run("curl", ["-sS", "--fail", "--unix-socket", d.socket, "-X", "POST", url]);
      expect(JSON.parse(root.stdout)).toEqual({ finished: [] });
      const listening = (await run("ss", ["-Htlnp"])).stdout;
      expect(listening).not.toContain(`pid=${d.child.pid},`);
    });
  },
);
