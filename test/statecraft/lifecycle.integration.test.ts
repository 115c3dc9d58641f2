import { chmod, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readMountinfo } from "../../src/system/mountinfo.js";
import { useScope } from "../support/scope.js";
import {
  alive,
  crashRun,
  escapeOf,
  fcosLayout,
  HOST_PID_TO,
  hostPid,
  journals,
  leftoverSnapshots,
  pidsCommand,
  runnerPid,
  runStatecraft,
  SCRIPTS,
  statecraft,
  until,
} from "./harness.js";

describe("statecraft crash safety, signals and bad input (real system)", () => {
  const scope = useScope();

  const layout = () => fcosLayout(scope);

  it("cleans up when statecraft itself is killed -9 during the command", async () => {
    const l = await layout();
    const { script, pids } = await pidsCommand(l.base);
    const child = statecraft(["-q", "-p", l.pathsDir, "--", script], {
      STATECRAFT_STATE_DIR: l.stateDir,
      STATECRAFT_GRACE: "2",
    });
    const commandPid = await hostPid(pids);
    const runner = await runnerPid(l.stateDir);
    expect(await leftoverSnapshots(l.varTop, l.srvTop)).toHaveLength(4);
    child.kill("SIGKILL");
    await until(() => !alive(runner) && !alive(commandPid));
    expect(await leftoverSnapshots(l.varTop, l.srvTop)).toEqual([]);
    expect(await journals(l.stateDir)).toEqual([]);
  });

  it("after kill -9 of everything during the command, --recover removes every snapshot", async () => {
    const l = await layout();
    const { script, pids } = await pidsCommand(l.base);
    const child = statecraft(["-q", "-p", l.pathsDir, "--", script], { STATECRAFT_STATE_DIR: l.stateDir });
    const commandPid = await hostPid(pids);
    const runner = await runnerPid(l.stateDir);
    // A crash of the run's PID 1 (and of statecraft) takes every process of the run with it.
    await crashRun(child.pid as number, runner, commandPid);
    // The namespace died with its processes: nothing of the run is mounted anywhere.
    expect((await readMountinfo()).filter((m) => m.mountPoint.startsWith("/run/statecraft"))).toEqual([]);
    expect(await journals(l.stateDir)).toHaveLength(1);
    expect(await leftoverSnapshots(l.varTop, l.srvTop)).toHaveLength(4);
    const recover = await runStatecraft(["--recover"], { STATECRAFT_STATE_DIR: l.stateDir });
    expect(recover.status, recover.stderr).toBe(0);
    expect(recover.stdout).toContain("recovered 1 run(s)");
    expect(await leftoverSnapshots(l.varTop, l.srvTop)).toEqual([]);
    expect(await journals(l.stateDir)).toEqual([]);
  });

  it("after kill -9 during setup, the next normal run cleans up first", async () => {
    const l = await layout();
    const marker = path.join(l.base, "in-setup");
    const slow = path.join(l.pathsDir, `${await escapeOf("/zzz-slow")}.state.sh`);
    await writeFile(slow, `setup_path() { ${HOST_PID_TO(marker)}; sleep 600; }\n`);
    const child = statecraft(["-q", "-p", l.pathsDir, "--", "true"], { STATECRAFT_STATE_DIR: l.stateDir });
    const scriptPid = await hostPid(marker);
    const runner = await runnerPid(l.stateDir);
    expect(await leftoverSnapshots(l.varTop, l.srvTop)).toHaveLength(4);
    await crashRun(child.pid as number, runner, scriptPid);
    expect(await leftoverSnapshots(l.varTop, l.srvTop)).toHaveLength(4);

    await writeFile(slow, "setup_path() { :; }\n");
    const next = await runStatecraft(["-q", "-p", l.pathsDir, "--", "true"], {
      STATECRAFT_STATE_DIR: l.stateDir,
    });
    expect(next.status, next.stderr).toBe(0);
    expect(await leftoverSnapshots(l.varTop, l.srvTop)).toEqual([]);
    expect(await journals(l.stateDir)).toEqual([]);
  });

  it("forwards SIGTERM to the command's process group, waits, tears down, exits 143", async () => {
    const l = await layout();
    const { script, pids } = await pidsCommand(l.base);
    const child = statecraft(["-q", "-p", l.pathsDir, "--", script], { STATECRAFT_STATE_DIR: l.stateDir });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    const commandPid = await hostPid(pids);
    child.kill("SIGTERM");
    expect(await exited).toBe(143);
    expect(alive(commandPid)).toBe(false);
    expect(await leftoverSnapshots(l.varTop, l.srvTop)).toEqual([]);
  });

  it("propagates a failing setup_path's status and tears down what was already set up", async () => {
    const l = await layout();
    await writeFile(
      path.join(l.pathsDir, `${await escapeOf("/zzz-fails")}.state.sh`),
      "setup_path() { echo broken >&2; return 3; }\n",
    );
    const result = await runStatecraft(["-p", l.pathsDir, "--", "true"], {
      STATECRAFT_STATE_DIR: l.stateDir,
    });
    expect(result.status).toBe(3);
    expect(result.stderr).toContain("broken");
    expect(result.stderr).toContain("setting up 'zzz\\x2dfails' failed with status 3");
    expect(await leftoverSnapshots(l.varTop, l.srvTop)).toEqual([]);
    expect(await journals(l.stateDir)).toEqual([]);
  });
});

describe("statecraft command line (real runs)", () => {
  const scope = useScope();

  async function bindPaths(): Promise<{ dir: string; pathsDir: string; state: string; source: string }> {
    const dir = await scope.tempDir("stowage-sc-");
    const source = path.join(dir, "data");
    await mkdir(source);
    await writeFile(path.join(source, "file"), "content\n");
    const pathsDir = path.join(dir, "paths.d");
    await mkdir(pathsDir);
    await symlink(path.join(SCRIPTS, "bind.sh"), path.join(pathsDir, `${await escapeOf(source)}.state.sh`));
    return { dir, pathsDir, state: path.join(dir, "state"), source };
  }

  it("returns the command's status, 127 for a missing command, and accepts shell builtins", async () => {
    const { pathsDir, state } = await bindPaths();
    const env = { STATECRAFT_STATE_DIR: state };
    expect((await runStatecraft(["-q", "-p", pathsDir, "--", "sh", "-c", "exit 5"], env)).status).toBe(5);
    const missing = await runStatecraft(["-q", "-p", pathsDir, "--", "stowage-no-such-command"], env);
    expect(missing.status).toBe(127);
    expect(missing.stderr).toContain("stowage-no-such-command: command not found");
    expect((await runStatecraft(["-q", "-p", pathsDir, "--", ":"], env)).status).toBe(0);
    const echo = await runStatecraft(["-q", "-p", pathsDir, "echo", "builtin-ok"], env);
    expect([echo.status, echo.stdout]).toEqual([0, "builtin-ok\n"]);
  });

  it("resolves a relative -p against the cwd, and groups short flags", async () => {
    const { dir, state, source } = await bindPaths();
    const result = await runStatecraft(
      ["-qv", "-p", "paths.d", "--", "cat", `.${source}/file`],
      { STATECRAFT_STATE_DIR: state },
      dir,
    );
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("content\n");
    expect(result.stderr).toContain("+ mount --bind");
  });

  it("rejects bad -p directories, bad names and scripts without setup_path", async () => {
    const { dir, pathsDir, state } = await bindPaths();
    const env = { STATECRAFT_STATE_DIR: state };
    const missing = await runStatecraft(["-p", path.join(dir, "nope"), "--", "true"], env);
    expect([missing.status, missing.stderr]).toEqual([
      1,
      `statecraft: paths directory ${path.join(dir, "nope")} does not exist\n`,
    ]);
    await writeFile(path.join(dir, "afile"), "");
    expect((await runStatecraft(["-p", path.join(dir, "afile"), "--", "true"], env)).stderr).toContain(
      "is not a directory",
    );
    expect((await runStatecraft(["-p", "/", "--", "true"], env)).stderr).toContain(
      "invalid paths directory '/'",
    );

    await writeFile(path.join(pathsDir, "a\\x2fb.state.sh"), "setup_path() { :; }\n");
    await writeFile(path.join(pathsDir, "a-..-b.state.sh"), "setup_path() { :; }\n");
    const badNames = await runStatecraft(["-p", pathsDir, "--", "true"], env);
    expect(badNames.status).toBe(1);
    expect(badNames.stderr).toContain("a\\x2fb.state.sh: name");
    expect(badNames.stderr).toContain("is not canonical");
    expect(badNames.stderr).toContain("a-..-b.state.sh");
  });

  it("fails with status 1 for a script without setup_path, leaving nothing mounted", async () => {
    const { pathsDir, state } = await bindPaths();
    await writeFile(path.join(pathsDir, "zzz.state.sh"), "echo no function here\n");
    const before = (await readMountinfo()).length;
    const result = await runStatecraft(["-q", "-p", pathsDir, "--", "true"], { STATECRAFT_STATE_DIR: state });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("defines no setup_path function");
    expect((await readMountinfo()).length).toBe(before);
  });

  it("--dry-run lists, --check validates names, permissions and setup_path", async () => {
    const { pathsDir, state, source } = await bindPaths();
    const env = { STATECRAFT_STATE_DIR: state };
    const dry = await runStatecraft(["--dry-run", "-p", pathsDir], env);
    expect(dry.status).toBe(0);
    expect(dry.stdout).toContain(`${JSON.stringify(source)}: bind.sh`);
    expect((await runStatecraft(["--check", "-p", pathsDir], env)).status).toBe(0);

    const worldWritable = path.join(pathsDir, "zz.state.sh");
    await writeFile(worldWritable, "setup_path() { :; }\n");
    await chmod(worldWritable, 0o666);
    await writeFile(path.join(pathsDir, "zzz.state.sh"), "x() { :; }\n");
    const check = await runStatecraft(["--check", "-p", pathsDir], env);
    expect(check.status).toBe(1);
    expect(check.stderr).toContain("zz.state.sh is world-writable");
    expect(check.stderr).toContain("zzz.state.sh defines no setup_path function");
  });

  it("serialises two runs on the same paths directory", async () => {
    const { dir, pathsDir, state } = await bindPaths();
    const log = path.join(dir, "log");
    const step = `echo start >> ${log}; sleep 0.5; echo end >> ${log}`;
    const env = { STATECRAFT_STATE_DIR: state };
    const [a, b] = await Promise.all([
      runStatecraft(["-q", "-p", pathsDir, "--", "sh", "-c", step], env),
      runStatecraft(["-q", "-p", pathsDir, "--", "sh", "-c", step], env),
    ]);
    expect([a.status, b.status]).toEqual([0, 0]);
    expect(await readFile(log, "utf8")).toBe("start\nend\nstart\nend\n");
  });
});
