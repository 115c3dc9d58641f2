import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../../src/system/exec.js";
import { freePort, type TestScope, useScope } from "../../support/scope.js";
import { CLI, generic, resticRepository, sidecar, world } from "../harness.js";
import { DB_LABELS } from "../seed-labels.js";

const GOLDEN = path.join(import.meta.dirname, "golden");

/** The golden file's text; STOWAGE_UPDATE_GOLDEN=1 rewrites it from `actual` (review the diff). */
async function golden(name: string, actual: string): Promise<string> {
  const file = path.join(GOLDEN, name);
  if (process.env.STOWAGE_UPDATE_GOLDEN) await writeFile(file, actual);
  return readFile(file, "utf8");
}

const SEED_CONFIG = {
  repos: [
    {
      id: "default",
      type: "s3",
      url: "s3:https://s3.example/bucket",
      env: { AWS_SECRET_ACCESS_KEY: "hunter2" },
    },
  ],
  plans: [{ id: "hand-made", repo: "default", schedule: "0 1 * * *", sources: ["/etc"] }],
};

async function setup(scope: TestScope, config: unknown = SEED_CONFIG) {
  const w = await world(scope);
  const dir = await scope.tempDir("stowage-sidecar-");
  const file = path.join(dir, "config.json");
  if (config !== undefined) await writeFile(file, `${JSON.stringify(config, null, 2)}\n`);
  const pgdata = await w.volume("pgdata");
  await w.container("db-1", { ...DB_LABELS, "com.docker.compose.project": w.marker }, [
    `${pgdata}:/var/lib/postgresql/data`,
  ]);
  const args = (...extra: string[]) => ["--config", file, ...w.only, ...extra];
  return { w, dir, file, args };
}

describe("backrest-sidecar with a real Docker engine", () => {
  const scope = useScope();

  it("--dry-run writes nothing, exits 2, logs plan.rendered and dry-run.complete", async () => {
    const { w, file, args } = await setup(scope);
    const before = await stat(file);
    const result = await sidecar(["reconcile", "--dry-run", ...args()]);
    expect(result.status).toBe(2);
    const rendered = result.logs.filter((l) => l.action === "plan.rendered");
    expect(rendered).toHaveLength(1);
    expect(rendered[0]).toMatchObject({
      level: "info",
      plan_id: "backrest_sidecar_db",
      sources: [`/var/lib/docker/volumes/${w.marker}_pgdata/_data`],
      hooks: {
        pre: [`sh -c 'docker stop ${w.marker}-db-1'`],
        post: [`sh -c 'docker start ${w.marker}-db-1'`],
      },
      retention: { spec: "daily=7,weekly=4,monthly=6" },
    });
    expect(result.logs.find((l) => l.action === "dry-run.complete")).toMatchObject({
      plans_seen: 1,
      plans_changed: 1,
      config: file,
    });
    const after = await stat(file);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect(result.stderr).not.toContain("hunter2");
  });

  it("reconciles into the seed's format (golden), then exits 2 without writing; follows label changes and removals", async () => {
    const { w, dir, file, args } = await setup(scope);
    const first = await sidecar(args());
    expect(first.status, first.stderr).toBe(0);
    const written = generic(await readFile(file, "utf8"), w.marker, dir);
    expect(written).toBe(await golden("seed-format.json", written));
    expect((await stat(file)).mode & 0o777).toBe(0o644);

    const before = await stat(file);
    const second = await sidecar(args());
    expect(second.status).toBe(2);
    const after = await stat(file);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);

    // A label change: compose recreates the container with the new labels.
    await w.remove(`${w.marker}-db-1`);
    const pgdata = `${w.marker}_pgdata`;
    await w.container(
      "db-1",
      { ...DB_LABELS, "com.docker.compose.project": w.marker, "backrest.schedule": "0 4 * * *" },
      [`${pgdata}:/var/lib/postgresql/data`],
    );
    expect((await sidecar(args())).status).toBe(0);
    expect(JSON.parse(await readFile(file, "utf8")).plans[1].schedule).toBe("0 4 * * *");

    // The container goes: its plan goes too (--keep-orphans keeps it); a plan without our prefix stays.
    await w.remove(`${w.marker}-db-1`);
    expect((await sidecar(args("--keep-orphans"))).status).toBe(2);
    const removed = await sidecar(args());
    expect(removed.status).toBe(0);
    expect(removed.logs.find((l) => l.action === "plan.removed")).toMatchObject({
      plan_id: "backrest_sidecar_db",
    });
    expect(JSON.parse(await readFile(file, "utf8")).plans.map((p: { id: string }) => p.id)).toEqual([
      "hand-made",
    ]);
  });

  it("reads and writes Backrest's own config (golden): modno bumped, unknown fields untouched", async () => {
    const backrest = {
      modno: 7,
      version: 6,
      instance: "my-host",
      repos: [
        {
          id: "default",
          uri: "/repos/default",
          guid: "a".repeat(64),
          password: "secret-password",
          flags: ["--limit-upload=1000"],
        },
      ],
      plans: [{ id: "ui-made", repo: "default", paths: ["/home"], schedule: { maxFrequencyDays: 1 } }],
      auth: { disabled: true },
    };
    const { w, dir, file, args } = await setup(scope, backrest);
    const result = await sidecar(args());
    expect(result.status, result.stderr).toBe(0);
    const written = generic(await readFile(file, "utf8"), w.marker, dir);
    expect(written).toBe(await golden("backrest-format.json", written));
    expect(result.stderr).not.toContain("secret-password");
    expect((await sidecar(args())).status).toBe(2);
  });

  it("a missing repository skips the plan, a container without mounts is an error (exit 3) while others are written", async () => {
    const { w, file, args } = await setup(scope);
    await w.container("lonely", { "backrest.enable": "true" }, []);
    await w.container("elsewhere", { "backrest.enable": "true", "backrest.repo": "nowhere" }, ["/tmp:/data"]);
    const result = await sidecar(args());
    expect(result.status).toBe(3);
    expect(result.logs.find((l) => l.action === "plan.error")).toMatchObject({
      level: "error",
      plan_id: `backrest_sidecar_${w.marker.replaceAll("-", "_")}_lonely`,
    });
    expect(result.logs.find((l) => l.action === "plan.skipped")?.msg).toContain(
      "repository 'nowhere' is not in the config",
    );
    const ids = JSON.parse(await readFile(file, "utf8")).plans.map((p: { id: string }) => p.id);
    expect(ids).toEqual(["hand-made", "backrest_sidecar_db"]);
  });

  it("status lists each labelled container, its plan id, and why one was skipped", async () => {
    const { w, args } = await setup(scope);
    await w.container("elsewhere", { "backrest.enable": "true", "backrest.repo": "nowhere" }, ["/tmp:/data"]);
    const result = await sidecar(["status", ...args(), "--json"]);
    expect(result.status).toBe(0);
    const rows = JSON.parse(result.stdout) as Array<{
      container: string;
      planId: string;
      state: string;
      reason?: string;
    }>;
    expect(rows.map((r) => [r.container, r.planId, r.state])).toEqual([
      [`${w.marker}-db-1`, "backrest_sidecar_db", "planned"],
      [`${w.marker}-elsewhere`, `backrest_sidecar_${w.marker.replaceAll("-", "_")}_elsewhere`, "skipped"],
    ]);
    expect(rows[1]?.reason).toContain("repository 'nowhere'");
  });

  it("refuses invalid JSON and leaves a file it cannot replace as it was", async () => {
    const { dir, file, args } = await setup(scope);
    await writeFile(file, "{ not json");
    const broken = await sidecar(args());
    expect(broken.status).toBe(1);
    expect(broken.stderr).toContain("is not valid JSON");
    expect(await readFile(file, "utf8")).toBe("{ not json");

    await writeFile(file, `${JSON.stringify(SEED_CONFIG, null, 2)}\n`);
    await run("mount", ["--bind", "-o", "ro", dir, dir]);
    scope.defer("unmount the read-only dir", () => run("umount", [dir]));
    const readOnly = await sidecar(args());
    expect(readOnly.status).toBe(1);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual(SEED_CONFIG);
  });

  it("two concurrent reconciles leave one valid file", async () => {
    const { file, args } = await setup(scope);
    const results = await Promise.all([sidecar(args()), sidecar(args())]);
    expect(results.map((r) => r.status).sort()).toEqual([0, 2]);
    expect(JSON.parse(await readFile(file, "utf8")).plans.map((p: { id: string }) => p.id)).toEqual([
      "hand-made",
      "backrest_sidecar_db",
    ]);
  });

  it("--apply restarts the Backrest container only when something changed", async () => {
    const { w, args } = await setup(scope);
    const backrest = await w.container("backrest", {}, [], { start: true });
    const startedAt = async () =>
      (await run("docker", ["inspect", "--format", "{{.State.StartedAt}}", backrest])).stdout.trim();
    const before = await startedAt();
    const changed = await sidecar(args("--apply", "--backrest-container", backrest));
    expect(changed.status).toBe(0);
    const after = await startedAt();
    expect(after).not.toBe(before);
    expect((await sidecar(args("--apply", "--backrest-container", backrest))).status).toBe(2);
    expect(await startedAt()).toBe(after);
  });

  it("daemon --with-events writes a new labelled container's plan within 2 s, and stops on SIGTERM with 0", async () => {
    const { w, file, args } = await setup(scope);
    const metricsPort = await freePort();
    const daemon = spawn(
      process.execPath,
      [
        CLI,
        "daemon",
        ...args("--with-events", "--interval", "1h", "--metrics-listen", `127.0.0.1:${metricsPort}`),
      ],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let log = "";
    daemon.stderr.on("data", (c: Buffer) => {
      log += c.toString();
    });
    scope.defer("stop the daemon", async () => {
      if (daemon.exitCode === null) {
        daemon.kill("SIGKILL");
        await once(daemon, "exit");
      }
    });
    for (let i = 0; i < 200 && !log.includes("reconcile.complete"); i++)
      await new Promise((r) => setTimeout(r, 25));
    const created = Date.now();
    await w.container("web", { "backrest.enable": "true" }, ["/tmp:/srv"]);
    const id = `backrest_sidecar_${w.marker.replaceAll("-", "_")}_web`;
    let seenAfter = -1;
    while (Date.now() - created < 5_000) {
      const text = await readFile(file, "utf8");
      if (text.includes(id)) {
        seenAfter = Date.now() - created;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(seenAfter, log).toBeGreaterThanOrEqual(0);
    expect(seenAfter).toBeLessThan(2_000);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^backrest_sidecar_reconciles_total{host="local"} [1-9]/m);
    expect(metrics).toMatch(/^backrest_sidecar_changes_total{host="local"} [1-9]/m);
    expect(metrics).toContain('backrest_sidecar_errors_total{host="local"} 0');
    daemon.kill("SIGTERM");
    expect((await once(daemon, "exit"))[0]).toBe(0);
  });
});

describe("backrest-sidecar backup-once (native engine, real restic)", () => {
  const scope = useScope();

  it("stops the quiesced container during the backup and always starts it again; forgets per workload", async () => {
    const w = await world(scope);
    const { env, restic } = await resticRepository(scope);
    const data = await w.volume("appdata");
    const app = await w.container(
      "app-1",
      {
        "restic-compose-backup.volumes": "true",
        "restic-compose-backup.quiesce": "true",
        "backrest.keep": "last=1",
        "com.docker.compose.service": "app",
      },
      [`${data}:/data`],
      { start: true, command: ["sh", "-c", "echo payload > /data/file; exec sleep 3600"] },
    );
    const startedAt = async () =>
      (
        await run("docker", ["inspect", "--format", "{{.State.StartedAt}} {{.State.Running}}", app])
      ).stdout.trim();
    const before = await startedAt();
    for (let round = 0; round < 2; round++) {
      const result = await sidecar(["backup-once", ...w.only, "--stop-timeout", "1"], env);
      expect(result.status, result.stderr).toBe(0);
      expect(result.logs.map((l) => l.action)).toEqual(
        expect.arrayContaining(["quiesce.stop", "backup.workload", "quiesce.start", "forget"]),
      );
    }
    const after = await startedAt();
    expect(after).toMatch(/ true$/);
    expect(after).not.toBe(before);
    const snapshots = await restic.json<Array<{ paths: string[] }>>(["snapshots"]);
    expect(snapshots).toEqual([expect.objectContaining({ paths: ["/volumes/app"] })]);
    const listing = (await restic.run(["ls", "latest"])).stdout;
    expect(listing).toContain("/volumes/app/data/file");

    // restic fails (wrong password): exit 1, the container is running again all the same.
    const failed = await sidecar(["backup-once", ...w.only, "--stop-timeout", "1"], {
      ...env,
      RESTIC_PASSWORD: "wrong",
    });
    expect(failed.status).toBe(1);
    expect((await startedAt()).endsWith(" true")).toBe(true);
  });

  it("--rcb-image runs the one-shot container as the seed says (docker socket read-only, env file, flags as env)", async () => {
    const w = await world(scope);
    // A stand-in image that checks how it was started (the real rcb image cannot be pulled here).
    const context = await scope.tempDir("stowage-rcb-image-");
    await writeFile(
      path.join(context, "rcb"),
      [
        "#!/bin/sh",
        '[ "$(basename "$0") $1" = "rcb backup" ] || { echo "args: $0 $*" >&2; exit 3; }',
        '[ -S /tmp/docker.sock ] || { echo "no docker socket" >&2; exit 3; }',
        'touch /tmp/docker.sock 2>/dev/null && { echo "socket not read-only" >&2; exit 3; }',
        '[ "$EXCLUDE_BIND_MOUNTS" = 1 ] && [ "$INCLUDE_PROJECT_NAME" = 1 ] || { echo "flags not passed" >&2; exit 3; }',
        '[ "$RESTIC_REPOSITORY" = "s3:https://example/bucket" ] || { echo "env file not passed" >&2; exit 3; }',
        "exit 0",
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    await writeFile(path.join(context, "Dockerfile"), "FROM stowage-test/busybox:1\nCOPY rcb /bin/rcb\n");
    const image = `stowage-test/rcb-stand-in:${w.marker}`;
    await run("docker", ["build", "-q", "--label", "io.stowage.test=1", "-t", image, context], {
      env: { ...process.env, DOCKER_BUILDKIT: "0" },
    });
    scope.defer(`remove ${image}`, () => run("docker", ["rmi", "-f", image]));
    const envFile = path.join(context, "rcb.env");
    await writeFile(
      envFile,
      "# restic settings\nRESTIC_REPOSITORY=s3:https://example/bucket\nRESTIC_PASSWORD=pw\n",
    );
    const quiet = await w.container("quiet", { "restic-compose-backup.quiesce": "true" }, [], {
      start: true,
    });
    const args = [
      "backup-once",
      ...w.only,
      "--rcb-image",
      image,
      "--rcb-env-file",
      envFile,
      "--rcb-network",
      "none",
      "--stop-timeout",
      "1",
    ];
    const ok = await sidecar([...args, "--exclude-bind-mounts", "--include-project-name"]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.logs.map((l) => l.action)).toEqual(
      expect.arrayContaining(["quiesce.stop", "backup.rcb", "quiesce.start"]),
    );
    const wrong = await sidecar(args);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain("flags not passed");
    expect((await run("docker", ["inspect", "--format", "{{.State.Running}}", quiet])).stdout.trim()).toBe(
      "true",
    );
  });

  it("a bad keep spec is an error naming label and container, before anything is stopped", async () => {
    const w = await world(scope);
    const name = await w.container(
      "bad",
      { "restic-compose-backup.quiesce": "true", "backrest.keep": "daily=often" },
      [],
      { start: true },
    );
    const before = (await run("docker", ["inspect", "--format", "{{.State.StartedAt}}", name])).stdout;
    const result = await sidecar(["backup-once", ...w.only], {
      RESTIC_REPOSITORY: "/nonexistent",
      RESTIC_PASSWORD: "x",
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`label backrest.keep=daily=often on container ${name}`);
    expect((await run("docker", ["inspect", "--format", "{{.State.StartedAt}}", name])).stdout).toBe(before);
  });
});
