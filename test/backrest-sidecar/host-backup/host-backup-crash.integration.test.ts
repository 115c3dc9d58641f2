import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../../src/system/exec.js";
import { createLoopBtrfs } from "../../support/btrfs.js";
import { useScope } from "../../support/scope.js";
import { resticRepository, SIDECAR_ENV, sidecar, startSidecar, world } from "../harness.js";

const running = async (name: string) =>
  (await run("docker", ["inspect", "--format", "{{.State.Running}}", name])).stdout.trim();

const IDLE = ["sh", "-c", 'trap "exit 0" TERM; while :; do sleep 0.1; done'];

/** Files of our journals in the state dir the harness gives every sidecar. */
async function journals(): Promise<string[]> {
  const dir = path.join(SIDECAR_ENV.BACKREST_SIDECAR_STATE_DIR as string, "journal");
  return (await run("ls", ["-A", dir], { okStatuses: [0, 2] })).stdout.split("\n").filter(Boolean);
}

/** Start backup-once in a process group of its own; kill -9 the whole group at the first log line with `action`. */
async function killAt(args: string[], env: NodeJS.ProcessEnv, action: string) {
  let killed = false;
  const child = startSidecar(
    args,
    env,
    (line) => {
      if (line.action === action && !killed) {
        killed = true;
        process.kill(-(child.pid as number), "SIGKILL");
      }
    },
    { detached: true },
  );
  const result = await child.output;
  expect(killed, result.stderr).toBe(true);
  return result;
}

describe("backrest-sidecar backup-once after kill -9", () => {
  const scope = useScope();

  it("in snapshot mode: the btrfs snapshots a killed run left are removed by the next run", async () => {
    const w = await world(scope);
    const { env } = await resticRepository(scope);
    const fs = await createLoopBtrfs(scope, { sizeMiB: 1024 });
    await run("sh", [
      "-c",
      `btrfs -q subvolume create ${fs.mountPoint}/@app && btrfs -q subvolume create ${fs.mountPoint}/@app/nested && head -c 200000000 /dev/urandom > ${fs.mountPoint}/@app/blob`,
    ]);
    const app = await w.container(
      "app",
      { "restic-compose-backup.volumes": "true", "restic-compose-backup.quiesce": "true" },
      [`${fs.mountPoint}/@app:/data`],
      { start: true, command: IDLE },
    );
    const volumesRoot = path.join(await scope.tempDir("stowage-crash-"), "volumes");
    const args = ["backup-once", ...w.only, "--volumes-root", volumesRoot, "--stop-timeout", "5"];

    await killAt(args, env, "snapshot.taken");
    // The killed run's snapshots (of @app and of the nested subvolume) are on the filesystem.
    const left = (await run("btrfs", ["subvolume", "list", fs.mountPoint])).stdout;
    expect(left.match(/\.stowage-snap-/g)?.length).toBe(2);
    expect(await running(app)).toBe("true");

    const next = await sidecar(args, env);
    expect(next.status, next.stderr).toBe(0);
    expect(next.logs.some((l) => l.action === "recover.snapshots")).toBe(true);
    expect((await run("btrfs", ["subvolume", "list", fs.mountPoint])).stdout).not.toContain(".stowage-snap-");
    expect(await journals()).toEqual([]);
  });

  it("in the stop window: the container a killed run left stopped is started by `recover`", async () => {
    const w = await world(scope);
    const { env } = await resticRepository(scope);
    const data = await w.volume("data");
    const app = await w.container(
      "app",
      { "restic-compose-backup.volumes": "true", "restic-compose-backup.quiesce": "true" },
      [`${data}:/data`],
      {
        start: true,
        command: [
          "sh",
          "-c",
          'head -c 200000000 /dev/urandom > /data/blob; trap "exit 0" TERM; while :; do sleep 0.1; done',
        ],
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const volumesRoot = path.join(await scope.tempDir("stowage-crash-"), "volumes");
    // --snapshot off: the container stays stopped for the whole backup.
    await killAt(
      ["backup-once", ...w.only, "--snapshot", "off", "--volumes-root", volumesRoot, "--stop-timeout", "5"],
      env,
      "backup.workload",
    );
    expect(await running(app)).toBe("false");

    const recovered = await sidecar(["recover"], env);
    expect(recovered.status, recovered.stderr).toBe(0);
    expect(recovered.stdout).toContain(`started 1 container(s) left stopped (${app})`);
    expect(await running(app)).toBe("true");
    expect(await journals()).toEqual([]);
  });
});

describe("backrest-sidecar backup-once with a database dump that fails", () => {
  const scope = useScope();

  it("fails that workload (exit 3, named), keeps no snapshot of it, backs up the others", async () => {
    const w = await world(scope);
    const { env, restic } = await resticRepository(scope);
    const data = await w.volume("data");
    const app = await w.container("app", { "restic-compose-backup.volumes": "true" }, [`${data}:/data`], {
      start: true,
      command: IDLE,
    });
    // Labelled as PostgreSQL, but its image has no pg_dumpall: the dump exits non-zero.
    const fake = await w.container("fakedb", { "restic-compose-backup.postgres": "true" }, [], {
      start: true,
      command: IDLE,
    });
    const volumesRoot = path.join(await scope.tempDir("stowage-dumpfail-"), "volumes");
    const result = await sidecar(["backup-once", ...w.only, "--volumes-root", volumesRoot], env);
    expect(result.status, result.stderr).toBe(3);
    expect(result.stdout).toMatch(
      new RegExp(`^${fake}\\s+dump\\s.*FAILED: the postgres dump of ${fake} exited`, "m"),
    );
    expect(result.stdout).toMatch(new RegExp(`^${app}\\s+live\\s.*\\sok$`, "m"));
    const snapshots = await restic.json<Array<{ paths: string[] }>>(["snapshots"]);
    expect(snapshots.map((s) => s.paths)).toEqual([[path.join(volumesRoot, app)]]);
  });
});
