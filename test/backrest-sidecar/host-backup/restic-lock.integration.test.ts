import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../../src/system/exec.js";
import { BACKREST_RESTIC_BIN } from "../../support/backrest.js";
import { type TestScope, useScope } from "../../support/scope.js";
import { resticRepository, sidecar, startSidecar, world } from "../harness.js";

const IDLE = ["sh", "-c", 'trap "exit 0" TERM; while :; do sleep 0.1; done'];

/**
 * Another restic holding the repository's exclusive lock, as Backrest's prune does after its
 * backups: a real `restic prune`, stopped with SIGSTOP while its lock file is there.
 */
async function exclusiveLockHeld(scope: TestScope, repoDir: string, env: NodeJS.ProcessEnv) {
  // A lock file by its final name (64 hex digits), not the temp file restic writes it through.
  const locked = async () =>
    (await readdir(path.join(repoDir, "locks"))).some((name) => /^[0-9a-f]{64}$/.test(name));
  for (let attempt = 0; attempt < 30; attempt++) {
    const prune: ChildProcess = spawn("restic", ["prune"], {
      env: { ...process.env, ...env },
      stdio: "ignore",
    });
    const exited = once(prune, "exit");
    let held = false;
    while (prune.exitCode === null && !held) {
      if (await locked()) {
        prune.kill("SIGSTOP");
        // Still there once stopped: it did not finish between the look and the signal.
        held = (await locked()) && prune.exitCode === null;
        if (!held) prune.kill("SIGCONT");
      }
    }
    if (!held) {
      await exited;
      continue;
    }
    const release = async () => {
      if (prune.exitCode !== null) return;
      prune.kill("SIGCONT");
      await exited;
    };
    scope.defer("let the stopped restic prune finish", release);
    return { release, pid: prune.pid as number };
  }
  throw new Error("restic prune never held its lock long enough to be stopped");
}

/** A directory whose `restic` is this binary, first on PATH. */
async function pathWithRestic(scope: TestScope, binary: string): Promise<string> {
  const dir = await scope.tempDir("stowage-restic-bin-");
  await mkdir(dir, { recursive: true });
  await symlink(binary, path.join(dir, "restic"));
  return `${dir}:${process.env.PATH}`;
}

async function resticMinor(binary = "restic"): Promise<number> {
  const version = /^restic 0\.(\d+)\./.exec((await run(binary, ["version"])).stdout);
  return version ? Number(version[1]) : 99;
}

const NEWER_RESTIC = BACKREST_RESTIC_BIN && existsSync(BACKREST_RESTIC_BIN) ? BACKREST_RESTIC_BIN : undefined;
if (!NEWER_RESTIC)
  process.stderr.write(
    "restic-lock: the restic >= 0.16 case not run: set BACKREST_RESTIC_BIN to a restic >= 0.16 executable\n",
  );

describe("backrest-sidecar backup-once beside another restic's exclusive lock (real restic)", () => {
  const scope = useScope();

  async function setup() {
    const w = await world(scope);
    const { env, restic, repoDir } = await resticRepository(scope);
    // Something for the holder's prune to look at, as in a repository in use.
    await restic.run(["backup", "/etc/hostname"]);
    const data = await w.volume("data");
    const app = await w.container("app", { "restic-compose-backup.volumes": "true" }, [`${data}:/data`], {
      start: true,
      command: IDLE,
    });
    const volumesRoot = path.join(await scope.tempDir("stowage-lock-"), "volumes");
    return {
      w,
      env,
      restic,
      repoDir,
      app,
      data,
      args: ["backup-once", ...w.only, "--volumes-root", volumesRoot],
    };
  }

  it.runIf(NEWER_RESTIC)(
    "restic 0.16 or later on PATH: backup-once waits for the lock and then stores the workload",
    async () => {
      const bin = NEWER_RESTIC as string;
      expect(await resticMinor(bin)).toBeGreaterThanOrEqual(16);
      const { env, restic, repoDir, app, args } = await setup();
      const lock = await exclusiveLockHeld(scope, repoDir, env);
      const child = startSidecar(args, { ...env, PATH: await pathWithRestic(scope, bin) }, () => {});
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      if (child.exitCode !== null)
        throw new Error(`backup-once ended while the lock was held:\n${(await child.output).stdout}`);
      await lock.release();
      const result = await child.output;
      expect(result.status, result.stderr).toBe(0);
      const snapshots = await restic.json<Array<{ tags?: string[] }>>(["snapshots"]);
      expect(snapshots.some((s) => s.tags?.includes(`container:${app}`))).toBe(true);
    },
  );

  it.runIf(NEWER_RESTIC)(
    "restic 0.16 or later on PATH: restore waits for the lock too, then puts the volume back",
    async () => {
      const { env, repoDir, app, data: volume, args } = await setup();
      const withNewer = { ...env, PATH: await pathWithRestic(scope, NEWER_RESTIC as string) };
      const mountpoint = (
        await run("docker", ["volume", "inspect", "-f", "{{.Mountpoint}}", volume])
      ).stdout.trim();
      const data = path.join(mountpoint, "note.txt");
      await writeFile(data, "as backed up\n");
      const saved = await sidecar(args, withNewer);
      expect(saved.status, saved.stderr).toBe(0);
      await writeFile(data, "changed after the backup\n");
      const lock = await exclusiveLockHeld(scope, repoDir, env);
      const restoreArgs = ["restore", app, ...args.slice(1)];
      const child = startSidecar(restoreArgs, withNewer, () => {});
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      if (child.exitCode !== null)
        throw new Error(`restore ended while the lock was held:\n${(await child.output).stderr}`);
      await lock.release();
      const result = await child.output;
      expect(result.status, result.stderr).toBe(0);
      expect(await readFile(data, "utf8")).toBe("as backed up\n");
    },
  );

  it("restic without --retry-lock (Debian bookworm's 0.14): the workload fails naming the lock, exit 1", async (context) => {
    if ((await resticMinor()) >= 16) context.skip();
    const { env, repoDir, app, args } = await setup();
    const lock = await exclusiveLockHeld(scope, repoDir, env);
    const result = await sidecar(args, env);
    await lock.release();
    expect(result.status, result.stderr).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`^${app}\\s+live\\s.*FAILED: [^]*locked exclusively`, "m"));
  });
});
