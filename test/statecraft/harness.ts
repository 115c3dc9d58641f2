import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { run } from "../../src/system/exec.js";
import { createLoopBtrfs } from "../support/btrfs.js";
import type { TestScope } from "../support/scope.js";

export const ROOT = path.resolve(import.meta.dirname, "../..");
export const CLI = path.join(ROOT, "dist/cli/statecraft.js");
export const SCRIPTS = path.join(ROOT, "lib/statecraft/state-scripts");

export interface Layout {
  base: string;
  etc: string;
  var: string;
  srv: string;
  foo: string;
  bar: string;
  pathsDir: string;
  stateDir: string;
  /** Top-level mount points to list subvolumes from. */
  varTop: string;
  srvTop: string;
  srvDevice: string;
}

export function escapeOf(p: string): Promise<string> {
  return run(process.execPath, [CLI, "-e", p]).then((r) => r.stdout.trim());
}

/**
 * Seed 000's layout on loop btrfs: a bind path (etc), a root-subvolume filesystem with
 * .snapshots (var), and a Snapper flat filesystem with @, @foo, @bar mounted at srv,
 * srv/containers/foo and srv/containers/bar, whose top level is not mounted.
 */
export async function fcosLayout(scope: TestScope): Promise<Layout> {
  const base = await scope.tempDir("stowage-sc-");
  const etc = path.join(base, "etc");
  await mkdir(etc);
  await writeFile(path.join(etc, "hostname"), "fcos\n");
  await writeFile(path.join(base, "single.conf"), "single file\n");

  // Two devices: btrfs.sh must name every device of a multi-device filesystem.
  const varFs = await createLoopBtrfs(scope, { devices: 2 });
  await run("btrfs", ["subvolume", "create", path.join(varFs.mountPoint, ".snapshots")]);
  await writeFile(path.join(varFs.mountPoint, "var-data"), "var before\n");

  const srvFs = await createLoopBtrfs(scope);
  for (const sub of ["@", "@foo", "@bar"])
    await run("btrfs", ["subvolume", "create", path.join(srvFs.mountPoint, sub)]);
  await mkdir(path.join(srvFs.mountPoint, "@", "containers", "foo"), { recursive: true });
  await mkdir(path.join(srvFs.mountPoint, "@", "containers", "bar"), { recursive: true });
  await writeFile(path.join(srvFs.mountPoint, "@", "srv-data"), "srv before\n");
  await writeFile(path.join(srvFs.mountPoint, "@foo", "foo-data"), "foo before\n");
  await writeFile(path.join(srvFs.mountPoint, "@bar", "bar-data"), "bar before\n");
  await run("umount", [srvFs.mountPoint]);

  const srv = path.join(base, "srv");
  const foo = path.join(srv, "containers", "foo");
  const bar = path.join(srv, "containers", "bar");
  await mkdir(srv);
  const device = srvFs.devices[0] ?? "";
  await run("mount", ["-t", "btrfs", "-o", "subvol=/@", device, srv]);
  scope.defer(`unmount ${srv}`, () => run("umount", ["--recursive", srv]));
  await run("mount", ["-t", "btrfs", "-o", "subvol=/@foo", device, foo]);
  await run("mount", ["-t", "btrfs", "-o", "subvol=/@bar", device, bar]);
  // Keep a top-level mount of srv's filesystem for the test's own inspection.
  const srvTop = path.join(base, "srv-top");
  await mkdir(srvTop);
  await run("mount", ["-t", "btrfs", "-o", "subvol=/", device, srvTop]);
  scope.defer(`unmount ${srvTop}`, () => run("umount", [srvTop]));

  const pathsDir = path.join(base, "paths.d");
  await mkdir(pathsDir);
  const link = async (script: string, target: string) =>
    symlink(path.join(SCRIPTS, script), path.join(pathsDir, `${await escapeOf(target)}.state.sh`));
  await link("bind.sh", etc);
  await link("bind.sh", path.join(base, "single.conf"));
  await link("btrfs.sh", varFs.mountPoint);
  await link("btrfs.sh", srv);
  await link("btrfs.sh", foo);
  await link("btrfs.sh", bar);
  const stateDir = path.join(base, "state");
  return {
    base,
    etc,
    var: varFs.mountPoint,
    srv,
    foo,
    bar,
    pathsDir,
    stateDir,
    varTop: varFs.mountPoint,
    srvDevice: device,
    srvTop,
  };
}

/** Snapshot subvolumes statecraft made (snap-* or *_snap-*) on the given top-level mounts. */
export async function leftoverSnapshots(...tops: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const top of tops) {
    const list = (await run("btrfs", ["subvolume", "list", "-a", top])).stdout;
    for (const line of list.split("\n")) if (/snap-[A-Za-z0-9]{10}$/.test(line)) found.push(line);
  }
  return found;
}

/** The built command; with `prelude`, run through bash inside a private mount namespace after it. */
export function statecraft(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd?: string,
  prelude?: string,
): ChildProcess {
  const argv = prelude
    ? [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "bash",
        "-c",
        `${prelude} && exec "$@"`,
        "bash",
        process.execPath,
        CLI,
        ...args,
      ]
    : [process.execPath, CLI, ...args];
  return spawn(argv[0] as string, argv.slice(1), {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(cwd ? { cwd } : {}),
  });
}

export async function runStatecraft(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd?: string,
  prelude?: string,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = statecraft(args, env, cwd, prelude);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const [status] = (await once(child, "exit")) as [number | null];
  return { status, stdout, stderr };
}

export async function journals(stateDir: string): Promise<string[]> {
  return readdir(path.join(stateDir, "journal")).catch(() => []);
}

/** The content of a file once it exists and ends with a newline (written by a process under test). */
export async function waitForFile(file: string, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(file, "utf8").catch(() => undefined);
    if (text?.endsWith("\n")) return text;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${file}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Private /run with Podman run dirs for root and user 0 (a prelude for statecraft()). */
export const PODMAN_RUN_DIRS =
  "mount -t tmpfs stowage-test-run /run && mkdir -p /run/containers /run/user/0/containers";

/** Stand-ins for `podman` (printing `podmanOutput`) and `sudo` (running the command after `--`) in DIR/bin. */
export async function podmanStandIns(dir: string, podmanOutput: string): Promise<string> {
  const bin = path.join(dir, "bin");
  await mkdir(bin);
  await writeFile(path.join(bin, "podman"), `#!/bin/sh\necho "${podmanOutput}"\n`, { mode: 0o755 });
  await writeFile(
    path.join(bin, "sudo"),
    '#!/bin/sh\nwhile [ "$1" != "--" ]; do shift; done; shift; exec "$@"\n',
    {
      mode: 0o755,
    },
  );
  return bin;
}

/** The PID exists (a zombie counts: kill(pid, 0) succeeds on it). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Bash that writes its own host PID (/proc is the host's, even in the run's PID namespace). */
export const HOST_PID_TO = (file: string) =>
  `read -r -a st < /proc/self/stat; echo "\${st[0]}" > ${file}.tmp && mv ${file}.tmp ${file}`;

export async function hostPid(file: string): Promise<number> {
  const pid = Number(await waitForFile(file));
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`bad PID in ${file}`);
  return pid;
}

export async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** kill -9 statecraft and the run's PID 1 at once, as a crash would; wait until `inside` died too. */
export async function crashRun(statecraftPid: number, runner: number, inside: number): Promise<void> {
  for (const pid of [runner, statecraftPid]) process.kill(pid, "SIGKILL");
  await until(() => !alive(runner) && !alive(inside));
}

/** A command that records its PID as the host sees it, then waits. */
export async function pidsCommand(dir: string): Promise<{ script: string; pids: string }> {
  const pids = path.join(dir, "pids");
  const script = path.join(dir, "hold.sh");
  await writeFile(script, `#!/bin/bash\n${HOST_PID_TO(pids)}\nsleep 600\n`, { mode: 0o755 });
  return { script, pids };
}

/** The processes a run's journal records as its owners (statecraft, then the runner), by host PID. */
export async function journalOwners(stateDir: string): Promise<number[]> {
  const [journal] = await journals(stateDir);
  const text = await readFile(path.join(stateDir, "journal", journal ?? ""), "utf8");
  const pids = text
    .split("\n")
    .filter((line) => line.startsWith("P "))
    .map((line) => Number(line.split(" ")[1]));
  // Never let a parsing slip turn into kill(0) or kill(1).
  if (pids.length === 0 || pids.some((pid) => !Number.isInteger(pid) || pid <= 1))
    throw new Error(`bad owner records in journal:\n${text}`);
  return pids;
}

/** The runner's host PID: the second liveness record of the run's journal. */
export async function runnerPid(stateDir: string): Promise<number> {
  const owners = await journalOwners(stateDir);
  if (owners.length < 2) throw new Error("no runner PID in the journal yet");
  return owners[1] as number;
}
