import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../../src/system/exec.js";
import { spawnServer } from "../../rest-server/process.js";
import { createLoopBtrfs } from "../../support/btrfs.js";
import { ensureDatabaseImage } from "../../support/databases.js";
import { htpasswdFile } from "../../support/htpasswd.js";
import { httpSink } from "../../support/http-sink.js";
import { resticClient } from "../../support/restic.js";
import { freePort, type TestScope, useScope } from "../../support/scope.js";
import { sidecar, world } from "../harness.js";

const MANIFEST = path.resolve(import.meta.dirname, "../../support/fixtures/tree-manifest.py");
const SECRETS = {
  rest: "rest-Secret-4711",
  restic: "restic-Secret-0815",
  pg: "pg-Secret-42",
  maria: "maria-Secret-17",
};

/** Everything a restore must bring back, per entry, by Python's standard library (an independent checker). */
const manifest = async (dir: string) =>
  (await run("python3", [MANIFEST, dir], { maxStdoutBytes: 64 * 1024 * 1024 })).stdout;

const sh = (script: string) => run("sh", ["-c", script]);

/** A writer that appends to a log in one volume and writes the same counter into another, forever. */
const WRITER = [
  "sh",
  "-c",
  'trap "exit 0" TERM; i=0; while :; do i=$((i+1)); echo $i >> /data/log; echo $i > /state/count; sleep 0.02; done',
];

/** A service that does nothing and stops at once on SIGTERM. */
const IDLE = ["sh", "-c", 'trap "exit 0" TERM; while :; do sleep 0.1; done'];

/** Our rest-server, append-only with private repos, its one user made by `htpasswd -B`. */
async function restServer(scope: TestScope) {
  const dir = await scope.tempDir("stowage-hostbackup-server-");
  const htpasswd = await htpasswdFile(path.join(dir, "htpasswd"), [["alice", SECRETS.rest, { bcrypt: 5 }]]);
  const port = await freePort();
  const data = path.join(dir, "data");
  await spawnServer(scope, [
    "--path",
    data,
    "--listen",
    `127.0.0.1:${port}`,
    "--append-only",
    "--private-repos",
    "--htpasswd-file",
    htpasswd,
  ]);
  const repository = `rest:http://alice:${SECRETS.rest}@127.0.0.1:${port}/alice/host`;
  const cache = await scope.tempDir("stowage-hostbackup-cache-");
  const env = { RESTIC_REPOSITORY: repository, RESTIC_PASSWORD: SECRETS.restic, RESTIC_CACHE_DIR: cache };
  const restic = await resticClient(scope, repository, { password: SECRETS.restic });
  await restic.run(["init"]);
  return { env, restic, repoDir: path.join(data, "alice", "host") };
}

/** Command lines of every process, collected while `work` runs (a secret must never show in one). */
async function watchCommandLines<T>(work: () => Promise<T>): Promise<{ value: T; lines: Set<string> }> {
  const lines = new Set<string>();
  let done = false;
  const poll = (async () => {
    while (!done) {
      for (const pid of await readdir("/proc")) {
        if (!/^\d+$/.test(pid)) continue;
        const line = await readFile(`/proc/${pid}/cmdline`).catch(() => Buffer.alloc(0));
        if (line.length > 0) lines.add(line.toString("utf8").replaceAll("\0", " "));
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    return { value: await work(), lines };
  } finally {
    done = true;
    await poll;
  }
}

/** A local HTTP endpoint that keeps what is POSTed to it (for --notify-url). */
async function notifyEndpoint(scope: TestScope) {
  const sink = await httpSink(scope);
  return {
    url: `${sink.base}/hook`,
    get bodies() {
      return sink.requests.map((r) => r.body);
    },
  };
}

const psql = (container: string, sql: string, db = "postgres") =>
  run("docker", ["exec", "-u", "postgres", container, "psql", "-X", "-q", "-At", "-d", db, "-c", sql]);
const mariadb = (container: string, sql: string) =>
  run("docker", ["exec", "-e", "MYSQL_PWD", container, "mariadb", "-uroot", "-N", "-e", sql], {
    env: { ...process.env, MYSQL_PWD: SECRETS.maria },
  });

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ; ) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not ready in time`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

/** Rows of the orders table in a dump: PostgreSQL's COPY lines, MariaDB's INSERT tuples (one per line). */
function dumpRows(dump: string, engine: "postgres" | "mariadb"): number {
  if (engine === "postgres") {
    const block = /^COPY public\.orders \(id\) FROM stdin;\n([\s\S]*?)^\\\.$/m.exec(dump)?.[1] ?? "";
    return block.split("\n").filter(Boolean).length;
  }
  const block = /^LOCK TABLES `orders` WRITE;\n([\s\S]*?)^UNLOCK TABLES;$/m.exec(dump)?.[1] ?? "";
  return block.match(/^\(\d+\)[,;]$/gm)?.length ?? 0;
}

describe("backrest-sidecar backup-once: one consistent host backup, and its restore", () => {
  const scope = useScope();

  it("backs up files and volumes from btrfs snapshots and databases by dumps into our rest-server; restore and verify prove it", async () => {
    const [pgImage, mariaImage] = await Promise.all([
      ensureDatabaseImage("postgres"),
      ensureDatabaseImage("mariadb"),
    ]);
    const w = await world(scope);
    const { env, restic, repoDir } = await restServer(scope);
    const fs = await createLoopBtrfs(scope, { sizeMiB: 1024 });
    const mnt = fs.mountPoint;
    const work = await scope.tempDir("stowage-hostbackup-");
    const volumesRoot = path.join(work, "volumes");

    // The app's bind mount: a directory inside subvolume @app, holding a nested subvolume (cache)
    // whose data a snapshot of @app alone would miss; its named volume binds subvolume @state.
    await sh(
      `btrfs -q subvolume create ${mnt}/@app && mkdir ${mnt}/@app/files && btrfs -q subvolume create ${mnt}/@app/files/cache`,
    );
    await sh(`btrfs -q subvolume create ${mnt}/@state && btrfs -q subvolume create ${mnt}/@state/inner`);
    const files = `${mnt}/@app/files`;
    await sh(
      [
        `cd ${files}`,
        "head -c 3000000 /dev/urandom > blob.bin",
        "echo config > app.conf && chown 1234:5678 app.conf && chmod 0640 app.conf",
        "ln -s app.conf current.conf && ln blob.bin blob.hardlink",
        "setfattr -n user.origin -v host-backup app.conf",
        "touch -d '2001-02-03 04:05:06' app.conf",
        "echo cached > cache/entry && mkdir -p deep/er && echo d > deep/er/file",
        `python3 -c 'open(b"caf\\xe9-latin1.txt", "wb").write(b"bytes")'`,
        `echo inner > ${mnt}/@state/inner/kept`,
      ].join(" && "),
    );
    const stateVolume = await w.volume("state", `${mnt}/@state`);
    const notesVolume = await w.volume("notes");
    const project = { "com.docker.compose.project": w.marker };
    // The compose file's three services (`compose up`): the app, web in front of it, notes beside.
    const up = async (commands: { app: string[]; notes: string[] }) => ({
      app: await w.container(
        "app",
        {
          ...project,
          "com.docker.compose.service": "app",
          "restic-compose-backup.volumes": "true",
          "restic-compose-backup.quiesce": "true",
        },
        [`${files}:/data`, `${stateVolume}:/state`],
        { start: true, command: commands.app },
      ),
      web: await w.container(
        "web",
        {
          ...project,
          "com.docker.compose.service": "web",
          "com.docker.compose.depends_on": "app:service_started:false",
          "restic-compose-backup.quiesce": "true",
        },
        [],
        { start: true, command: IDLE },
      ),
      // Not on btrfs (Docker's own volumes dir): backed up live, not stopped.
      notes: await w.container(
        "notes",
        { ...project, "com.docker.compose.service": "notes", "restic-compose-backup.volumes": "true" },
        [`${notesVolume}:/notes`],
        { start: true, command: commands.notes },
      ),
    });
    const { app, web, notes } = await up({
      app: WRITER,
      notes: ["sh", "-c", "echo first > /notes/a && echo second > /notes/b && exec sleep 3600"],
    });
    const pg = await w.container(
      "pg",
      { ...project, "com.docker.compose.service": "pg", "restic-compose-backup.postgres": "true" },
      [],
      { start: true, image: pgImage, env: { POSTGRES_PASSWORD: SECRETS.pg } },
    );
    const maria = await w.container(
      "maria",
      { ...project, "com.docker.compose.service": "maria", "restic-compose-backup.mariadb": "true" },
      [],
      { start: true, image: mariaImage, env: { MARIADB_ROOT_PASSWORD: SECRETS.maria } },
    );
    await waitFor("postgres", async () => (await psql(pg, "select 1")).stdout.trim() === "1");
    // The image's first start runs a server to set root's password, then the real one as PID 1:
    // an answer before PID 1 is mariadbd may come from the first, about to shut down.
    const pid1 = async () => (await run("docker", ["exec", maria, "cat", "/proc/1/comm"])).stdout.trim();
    await waitFor(
      "mariadb",
      async () => (await pid1()) === "mariadbd" && (await mariadb(maria, "select 1")).stdout.trim() === "1",
    );
    await psql(pg, "create database shop");
    await psql(
      pg,
      "create table orders (id serial primary key); insert into orders select from generate_series(1, 500)",
      "shop",
    );
    await mariadb(
      maria,
      "create database shop; create table shop.orders (id int auto_increment primary key); insert into shop.orders values (),(),()",
    );
    // Writers that keep going through the whole backup.
    await run("docker", [
      "exec",
      "-d",
      "-u",
      "postgres",
      pg,
      "sh",
      "-c",
      'while [ ! -e /tmp/stop ]; do psql -X -q -d shop -c "insert into orders default values"; done',
    ]);
    await run(
      "docker",
      [
        "exec",
        "-d",
        "-e",
        "MYSQL_PWD",
        maria,
        "sh",
        "-c",
        'while [ ! -e /tmp/stop ]; do mariadb -uroot -e "insert into shop.orders values ()"; done',
      ],
      {
        env: { ...process.env, MYSQL_PWD: SECRETS.maria },
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 500));

    const hook = await notifyEndpoint(scope);
    const report = path.join(work, "report.json");
    const metrics = path.join(work, "backup.prom");
    const { value: backup, lines } = await watchCommandLines(() =>
      sidecar(
        [
          "backup-once",
          ...w.only,
          "--include-project-name",
          "--snapshot",
          "auto",
          "--no-forget",
          "--volumes-root",
          volumesRoot,
          "--stop-timeout",
          "5",
          "--report",
          report,
          "--metrics-file",
          metrics,
          "--notify-url",
          hook.url,
        ],
        env,
      ),
    );
    for (const db of [pg, maria]) await run("docker", ["exec", db, "touch", "/tmp/stop"]);
    expect(backup.status, backup.stderr).toBe(0);

    // Secrets: on no command line while it ran, in no output, report or metrics.
    const everything = [
      backup.stdout,
      backup.stderr,
      await readFile(report, "utf8"),
      await readFile(metrics, "utf8"),
      ...hook.bodies,
    ].join("\n");
    for (const secret of Object.values(SECRETS)) {
      expect([...lines].filter((line) => line.includes(secret))).toEqual([]);
      expect(everything).not.toContain(secret);
    }

    // The report: per workload, its mode, snapshots and downtime; the table on stdout; metrics; the POST.
    const json = JSON.parse(await readFile(report, "utf8")) as {
      status: number;
      workloads: Array<{
        workload: string;
        mode: string;
        snapshots: string[];
        status: string;
        downtimeSeconds?: number;
        dumpBytes?: number;
      }>;
    };
    const entry = (name: string) => json.workloads.find((x) => x.workload === name);
    expect(json.status).toBe(0);
    expect(entry(app)).toMatchObject({ mode: "snapshot", status: "ok" });
    expect(entry(notes)).toMatchObject({ mode: "live", status: "ok" });
    expect(entry(pg)).toMatchObject({ mode: "dump", status: "ok" });
    expect(entry(maria)).toMatchObject({ mode: "dump", status: "ok" });
    expect(entry(pg)?.dumpBytes).toBeGreaterThan(1000);
    // Stopped only for the snapshots: well under the writer's stop time plus two seconds.
    expect(entry(app)?.downtimeSeconds).toBeLessThan(3);
    expect(entry(notes)?.downtimeSeconds).toBeUndefined();
    expect(backup.stdout).toMatch(new RegExp(`^${app}\\s+snapshot\\s.*\\sok$`, "m"));
    expect(await readFile(metrics, "utf8")).toContain(`stowage_backup_success{workload="${app}"} 1`);
    expect(await readFile(metrics, "utf8")).toMatch(
      new RegExp(`stowage_backup_downtime_seconds\\{workload="${app}"\\} [0-9.]+`),
    );
    expect(hook.bodies).toHaveLength(1);
    expect(JSON.parse(hook.bodies[0] as string)).toMatchObject({ status: 0 });
    // Compose's depends_on: web (depends on app) stops first and starts last.
    const order = backup.logs
      .filter((l) => l.action === "quiesce.stop" || l.action === "quiesce.start")
      .map((l) => `${l.action} ${l.container}`);
    expect(order).toEqual([
      `quiesce.stop ${web}`,
      `quiesce.stop ${app}`,
      `quiesce.start ${app}`,
      `quiesce.start ${web}`,
    ]);
    // No snapshot is left on the filesystem, no journal in the state dir.
    expect((await run("btrfs", ["subvolume", "list", mnt])).stdout).not.toContain(".stowage-snap");

    // What restic itself restores of the app's snapshot is the reference for our restore.
    const snapshots = await restic.json<Array<{ short_id: string; paths: string[]; tags: string[] }>>([
      "snapshots",
    ]);
    const appPrefix = path.join(volumesRoot, w.marker, "app");
    const appSnapshot = snapshots.find((s) => s.paths.includes(appPrefix));
    expect(appSnapshot, JSON.stringify(snapshots)).toBeDefined();
    const reference = await scope.tempDir("stowage-hostbackup-reference-");
    await restic.run(["restore", appSnapshot?.short_id ?? "", "--target", reference]);
    const refData = path.join(reference, appPrefix, "data");
    const refState = path.join(reference, appPrefix, "state");
    // One instant across both subvolumes: the writer's log ends with the counter it wrote last.
    const log = (await readFile(path.join(refData, "log"), "utf8")).trim().split("\n");
    expect(log.at(-1)).toBe((await readFile(path.join(refState, "count"), "utf8")).trim());
    expect(await readFile(path.join(refData, "cache", "entry"), "utf8")).toBe("cached\n");
    expect(await readFile(path.join(refState, "inner", "kept"), "utf8")).toBe("inner\n");
    const dumpOf = async (service: string) => {
      const file = `/databases/${w.marker}/${service}/all.sql`;
      return (await restic.run(["dump", "--path", file, "latest", file])).stdout;
    };
    const dumps = { pg: await dumpOf("pg"), maria: await dumpOf("maria") };
    expect(dumpRows(dumps.pg, "postgres")).toBeGreaterThan(500);
    expect(dumpRows(dumps.maria, "mariadb")).toBeGreaterThan(3);

    // Disaster: compose down -v of the app, files changed and added, the databases dropped.
    await run("docker", ["rm", "-f", web, app]);
    await run("docker", ["volume", "rm", stateVolume]);
    await sh(
      `rm ${mnt}/@state/count ${mnt}/@state/inner/kept && echo junk > ${mnt}/@state/junk && echo new > ${files}/not-in-snapshot && rm ${files}/app.conf`,
    );
    await run("docker", ["rm", "-f", notes]);
    await run("docker", ["volume", "rm", notesVolume]);
    await psql(pg, "drop database shop");
    await mariadb(maria, "drop database shop");
    // compose up: the same containers and volumes again, empty.
    await w.volume("state", `${mnt}/@state`);
    await w.volume("notes");
    await up({ app: IDLE, notes: ["sleep", "3600"] });

    const common = [
      ...w.only,
      "--include-project-name",
      "--volumes-root",
      volumesRoot,
      "--stop-timeout",
      "5",
    ];
    const dry = await sidecar(["restore", `${w.marker}/app`, ...common, "--dry-run"], env);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would replace volume ${files} from ${appSnapshot?.short_id}`);
    expect(await stat(path.join(files, "not-in-snapshot"))).toBeDefined();

    const restored = await sidecar(["restore", `${w.marker}/app`, ...common], env);
    expect(restored.status, restored.stderr).toBe(0);
    expect(restored.stdout).toContain(`replaced volume ${files}`);
    // The restored app runs again, and so does what depends on it (stopped meanwhile).
    for (const name of [app, web])
      expect((await run("docker", ["inspect", "-f", "{{.State.Running}}", name])).stdout.trim()).toBe("true");
    // The exact tree: equal to restic's own restore, entry by entry, metadata and xattrs included.
    expect(await manifest(files)).toBe(await manifest(refData));
    expect(await manifest(`${mnt}/@state`)).toBe(await manifest(refState));
    // And the btrfs layout of the trees replaced is kept: @app/files/cache and @state/inner are
    // subvolumes still.
    const subvolumes = (await run("btrfs", ["subvolume", "list", mnt])).stdout;
    expect(subvolumes).toMatch(/ path @app\/files\/cache$/m);
    expect(subvolumes).toMatch(/ path @state\/inner$/m);
    expect(subvolumes).not.toMatch(/stowage/);

    expect((await sidecar(["restore", `${w.marker}/notes`, ...common], env)).status).toBe(0);
    expect((await run("docker", ["exec", notes, "cat", "/notes/a", "/notes/b"])).stdout).toBe(
      "first\nsecond\n",
    );

    for (const [db, engine] of [
      ["pg", "postgres"],
      ["maria", "mariadb"],
    ] as const) {
      const result = await sidecar(["restore", `${w.marker}/${db}`, ...common], env);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toContain("replaced database");
      const rows =
        engine === "postgres"
          ? (await psql(pg, "select count(*) from orders", "shop")).stdout.trim()
          : (await mariadb(maria, "select count(*) from shop.orders")).stdout.trim();
      expect(Number(rows)).toBe(dumpRows(dumps[db], engine));
    }
    // PostgreSQL: what pg_dumpall prints now is what was dumped at backup time.
    const now = (await run("docker", ["exec", "-u", "postgres", pg, "pg_dumpall", "--clean", "--if-exists"]))
      .stdout;
    // (Only the \restrict keys differ: psql's guard, random per dump since PostgreSQL 15.14.)
    const unkeyed = (dump: string) => dump.replace(/^\\(un)?restrict \S+$/gm, "\\$1restrict KEY");
    expect(unkeyed(now)).toBe(unkeyed(dumps.pg));

    // The restore drill passes; after a pack is corrupted on the server's disk it fails.
    const drillArgs = [
      "verify",
      ...w.only,
      "--include-project-name",
      "--volumes-root",
      volumesRoot,
      "--scratch-dir",
      work,
    ];
    const drill = await sidecar(drillArgs, env);
    expect(drill.status, drill.stdout + drill.stderr).toBe(0);
    expect(drill.stdout).toMatch(new RegExp(`^${app}\\s+volumes\\s.*\\sok$`, "m"));
    expect(drill.stdout).toMatch(new RegExp(`^${pg}\\s+database\\s.*\\sok$`, "m"));
    expect(drill.stdout).toMatch(new RegExp(`^${maria}\\s+database\\s.*\\sok$`, "m"));
    // No throwaway container is left behind.
    expect((await run("docker", ["ps", "-aq", "--filter", "label=io.stowage.verify"])).stdout.trim()).toBe(
      "",
    );

    const packs = (await run("find", [path.join(repoDir, "data"), "-type", "f"])).stdout.trim().split("\n");
    for (const pack of packs) {
      const bytes = await readFile(pack);
      const middle = Math.floor(bytes.length / 2);
      bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
      await writeFile(pack, bytes);
    }
    const broken = await sidecar(drillArgs, {
      ...env,
      RESTIC_CACHE_DIR: await scope.tempDir("stowage-hostbackup-cold-cache-"),
    });
    expect(broken.status).not.toBe(0);
    expect(broken.stdout).toMatch(new RegExp(`^${app}\\s+volumes\\s.*FAILED`, "m"));
  }, 600_000);
});
