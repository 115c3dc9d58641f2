import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, readFile, symlink } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { readMountinfo } from "../../src/system/mountinfo.js";
import { processStat } from "../../src/system/process.js";
import { createLoopBtrfs } from "../support/btrfs.js";
import { type TestScope, useScope } from "../support/scope.js";
import {
  CLI,
  escapeOf,
  fcosLayout,
  hostPid,
  journalOwners,
  journals,
  leftoverSnapshots,
  pidsCommand,
  runStatecraft,
  SCRIPTS,
  until,
  waitForFile,
} from "./harness.js";

const UNREAPING_PARENT = path.join(import.meta.dirname, "fixtures", "unreaping-parent.py");

interface HeldRun {
  /** statecraft's PID, also its process group. */
  group: number;
  /** Every process the run's journal records as an owner. */
  owners: number[];
}

/**
 * Start statecraft under a parent that never reaps (a PID 1 that does not wait, or a service
 * manager slow to), wait until its command runs, then kill -9 its whole process group and wait
 * until every recorded owner is a zombie: dead, but still in /proc with its PID and start time.
 */
async function crashUnreaped(scope: TestScope, args: string[], env: NodeJS.ProcessEnv): Promise<HeldRun> {
  const dir = await scope.tempDir("stowage-sc-crash-");
  const { script, pids } = await pidsCommand(dir);
  const parent: ChildProcess = spawn(
    "python3",
    [UNREAPING_PARENT, process.execPath, CLI, ...args, "--", script],
    {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  scope.defer("end the unreaping parent (its zombies go with it)", async () => {
    if (parent.exitCode === null && parent.signalCode === null) parent.kill("SIGKILL");
    if (parent.exitCode === null && parent.signalCode === null) await once(parent, "exit");
  });
  let printed = "";
  parent.stdout?.on("data", (chunk: Buffer) => {
    printed += chunk.toString();
  });
  await until(() => printed.includes("\n"));
  const group = Number(printed.trim());
  if (!Number.isInteger(group) || group <= 1)
    throw new Error(`bad PID from the unreaping parent: ${printed}`);
  await hostPid(pids);
  const owners = await journalOwners(env.STATECRAFT_STATE_DIR as string);
  expect(owners).toHaveLength(2);
  process.kill(-group, "SIGKILL");
  // Dying takes as long as tearing down the run's mount namespace (unmounting btrfs writes back),
  // which under the I/O of parallel tests has taken over 30 s.
  await until(async () => {
    const states = await Promise.all(owners.map((pid) => processStat(pid)));
    return states.every((stat) => stat?.state === "Z");
  }, 180_000);
  return { group, owners };
}

describe("statecraft recovery of crashed runs (real btrfs, real zombies)", () => {
  const scope = useScope();

  it.each([
    ["statecraft --recover", ["--recover"]],
    ["the next normal run", ["-q", "-p", "PATHS", "--", "true"]],
  ])(
    "a run killed -9 as a whole is recovered at once by %s while its processes are unreaped zombies",
    async (_, args) => {
      const l = await fcosLayout(scope);
      const env = { STATECRAFT_STATE_DIR: l.stateDir };
      const held = await crashUnreaped(scope, ["-q", "-p", l.pathsDir], env);
      // The zombies are still there, with the PIDs the journal recorded.
      for (const pid of held.owners) expect((await processStat(pid))?.state).toBe("Z");
      expect(await leftoverSnapshots(l.varTop, l.srvTop)).toHaveLength(4);

      const result = await runStatecraft(
        args.map((arg) => (arg === "PATHS" ? l.pathsDir : arg)),
        env,
      );
      expect(result.status, result.stderr).toBe(0);
      if (args[0] === "--recover") expect(result.stdout).toBe("recovered 1 run(s); 0 still running\n");
      expect(await leftoverSnapshots(l.varTop, l.srvTop)).toEqual([]);
      expect(await journals(l.stateDir)).toEqual([]);
      expect((await readMountinfo()).filter((m) => m.mountPoint.startsWith("/run/statecraft"))).toEqual([]);
    },
  );

  /** A btrfs with .snapshots, snapshotted by btrfs.sh, on one loop device this test can unplug. */
  async function unpluggableLayout() {
    const fs = await createLoopBtrfs(scope);
    await run("btrfs", ["subvolume", "create", path.join(fs.mountPoint, ".snapshots")]);
    const base = await scope.tempDir("stowage-sc-unplug-");
    const pathsDir = path.join(base, "paths.d");
    await mkdir(pathsDir);
    await symlink(
      path.join(SCRIPTS, "btrfs.sh"),
      path.join(pathsDir, `${await escapeOf(fs.mountPoint)}.state.sh`),
    );
    const device = fs.devices[0] as string;
    const image = (await run("losetup", ["--noheadings", "--output", "BACK-FILE", device])).stdout.trim();
    return { fs, device, image, pathsDir, stateDir: path.join(base, "state") };
  }

  async function unplug(fs: { mountPoint: string }, device: string): Promise<void> {
    await run("umount", [fs.mountPoint]);
    await run("btrfs", ["device", "scan", "--forget", device], { okStatuses: [0, 1] });
    await run("losetup", ["--detach", device]);
    const blkid = await run("blkid", ["-c", "/dev/null", "-o", "device", device], { okStatuses: [0, 2] });
    expect(blkid.stdout.trim()).toBe("");
  }

  async function plugBackIn(fs: { mountPoint: string }, device: string, image: string): Promise<void> {
    await run("losetup", [device, image]);
    await run("mount", ["-t", "btrfs", device, fs.mountPoint]);
  }

  it("keeps the journal of a run whose disk is unplugged, says which filesystem is missing, exits 75, and finishes once it is back", async () => {
    const u = await unpluggableLayout();
    const env = { STATECRAFT_STATE_DIR: u.stateDir };
    await crashUnreaped(scope, ["-q", "-p", u.pathsDir], env);
    expect(await leftoverSnapshots(u.fs.mountPoint)).toHaveLength(1);
    const [journal] = await journals(u.stateDir);
    const runId = path.basename(journal as string, ".journal");
    await unplug(u.fs, u.device);

    const waiting = await runStatecraft(["--recover"], env);
    expect(waiting.status).toBe(75);
    expect(waiting.stdout).toBe("recovered 0 run(s); 0 still running; 1 waiting for a filesystem\n");
    expect(waiting.stderr).toBe(
      `statecraft: run ${runId} cannot be cleaned up yet: filesystem ${u.fs.uuid} is not attached ` +
        "(disk unplugged?). Its journal is kept and retried by every run and by --recover; " +
        `to drop it on purpose: statecraft --forget ${runId}\n`,
    );
    expect(await journals(u.stateDir)).toEqual([journal]);

    await plugBackIn(u.fs, u.device, u.image);
    // Still there after the disk came back, until recovery runs.
    expect(await leftoverSnapshots(u.fs.mountPoint)).toHaveLength(1);
    const recovered = await runStatecraft(["--recover"], env);
    expect([recovered.status, recovered.stdout, recovered.stderr]).toEqual([
      0,
      "recovered 1 run(s); 0 still running\n",
      "",
    ]);
    expect(await leftoverSnapshots(u.fs.mountPoint)).toEqual([]);
    expect(await journals(u.stateDir)).toEqual([]);
  });

  it("--forget RUN_ID drops a dead run's journal on purpose and prints what was never done", async () => {
    const u = await unpluggableLayout();
    const env = { STATECRAFT_STATE_DIR: u.stateDir };
    await crashUnreaped(scope, ["-q", "-p", u.pathsDir], env);
    const [journal] = await journals(u.stateDir);
    const runId = path.basename(journal as string, ".journal");
    await unplug(u.fs, u.device);

    const bad = await runStatecraft(["--forget", "../etc"], env);
    expect([bad.status, bad.stderr]).toEqual([
      1,
      "statecraft: --forget ../etc: a run ID is 10 letters and digits (see 'statecraft --recover')\n",
    ]);
    const unknown = await runStatecraft(["--forget", "AAAAAAAAAA"], env);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain("no journal for run AAAAAAAAAA");

    const forgot = await runStatecraft(["--forget", runId], env);
    expect(forgot.status, forgot.stderr).toBe(0);
    expect(forgot.stdout).toContain(`forgot run ${runId}; these cleanup actions were never done`);
    expect(forgot.stdout).toContain(`btrfs_delete_snapshot ${u.fs.uuid} /.snapshots/snap-${runId}`);
    expect(await journals(u.stateDir)).toEqual([]);
    const after = await runStatecraft(["--recover"], env);
    expect([after.status, after.stdout]).toEqual([0, "recovered 0 run(s); 0 still running\n"]);

    // The snapshot is the user's now: it is still on the disk once it is back.
    await plugBackIn(u.fs, u.device, u.image);
    expect(await leftoverSnapshots(u.fs.mountPoint)).toHaveLength(1);
    await run("btrfs", ["subvolume", "delete", path.join(u.fs.mountPoint, ".snapshots", `snap-${runId}`)]);
  });

  it("--forget refuses a run that is still running", async () => {
    const u = await unpluggableLayout();
    const env = { STATECRAFT_STATE_DIR: u.stateDir };
    const dir = await scope.tempDir();
    const { script, pids } = await pidsCommand(dir);
    const child = spawn(process.execPath, [CLI, "-q", "-p", u.pathsDir, "--", script], {
      env: { ...process.env, ...env },
      stdio: "ignore",
    });
    const exited = once(child, "exit");
    await hostPid(pids);
    const [journal] = await journals(u.stateDir);
    const runId = path.basename(journal as string, ".journal");
    const refused = await runStatecraft(["--forget", runId], env);
    expect([refused.status, refused.stderr]).toEqual([
      1,
      `statecraft: run ${runId} is still running; it cleans up itself\n`,
    ]);
    expect(await readFile(path.join(u.stateDir, "journal", journal as string), "utf8")).toContain("P ");
    child.kill("SIGTERM");
    await exited;
    expect(await leftoverSnapshots(u.fs.mountPoint)).toEqual([]);
    await waitForFile(pids);
  });
});
