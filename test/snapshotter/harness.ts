import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { expect } from "vitest";
import { run } from "../../src/system/exec.js";
import { type CliResult, runCli } from "../support/cli.js";
import { xattrsOfTree } from "../support/xattrs.js";

export const CLI = path.resolve(import.meta.dirname, "../../dist/cli/snapshotter.js");

export type Result = CliResult;

/** The built `snapshotter` command, as a user runs it. */
export function snapshotter(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Result> {
  return runCli([process.execPath, CLI, ...args], options);
}

export const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

export async function fileHash(file: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(file))
    .digest("hex");
}

/** `dd if=/dev/zero of=FILE bs=512 count=2`, as the seed initialises an archive. */
export async function ddArchive(file: string): Promise<void> {
  await run("dd", ["if=/dev/zero", `of=${file}`, "bs=512", "count=2"]);
}

/**
 * Everything a volume can hold, made with the tools users use: nested dirs, an empty dir, a
 * sticky dir with a default ACL, setuid/setgid, other owners, ns mtimes, xattrs, an access ACL,
 * symlinks (relative, absolute, dangling), hard links, a FIFO, a device node, long names.
 */
export async function fidelityTree(dir: string): Promise<void> {
  await mkdir(path.join(dir, "nested", "deeper"), { recursive: true });
  await mkdir(path.join(dir, "empty"));
  await mkdir(path.join(dir, "shared"));
  await run("chmod", ["1777", path.join(dir, "shared")]);
  await run("setfacl", ["-d", "-m", "g:2345:rx", path.join(dir, "shared")]);
  await writeFile(path.join(dir, "nested", "deeper", "data.bin"), Buffer.alloc(300_000, 7));
  await writeFile(path.join(dir, "tool"), "#!/bin/sh\necho tool\n");
  await run("chmod", ["6755", path.join(dir, "tool")]);
  await writeFile(path.join(dir, "owned"), "someone else's\n");
  await run("chown", ["1234:5678", path.join(dir, "owned")]);
  await run("touch", ["-m", "-d", "2021-02-03 04:05:06.123456789", path.join(dir, "owned")]);
  await writeFile(path.join(dir, "tagged"), "with xattrs\n");
  await run("setfattr", ["-n", "user.origin", "-v", "stowage test", path.join(dir, "tagged")]);
  await run("setfattr", ["-n", "user.binary", "-v", "0x00ff7f", path.join(dir, "tagged")]);
  await run("setfacl", ["-m", "u:4321:rw", path.join(dir, "tagged")]);
  await run("ln", ["-s", "nested/deeper/data.bin", path.join(dir, "relative-link")]);
  await run("ln", ["-s", "/etc/passwd", path.join(dir, "absolute-link")]);
  await run("ln", ["-s", "does/not/exist", path.join(dir, "dangling-link")]);
  await writeFile(path.join(dir, "hard-one"), "same inode\n");
  await run("ln", [path.join(dir, "hard-one"), path.join(dir, "nested", "hard-two")]);
  await run("mkfifo", [path.join(dir, "pipe")]);
  await run("mknod", [path.join(dir, "zero-dev"), "c", "1", "5"]);
  const long = path.join(dir, "l".repeat(80), "m".repeat(80));
  await mkdir(long, { recursive: true });
  await writeFile(path.join(long, `${"n".repeat(200)}.txt`), "long name\n");
  await writeFile(path.join(dir, "naïve ☃.txt"), "unicode\n");
}

/**
 * One line per entry with everything restore must bring back; hard links share a group label. The
 * mtime is the last field, in nanoseconds.
 */
export async function describeTree(given: string): Promise<string[]> {
  // getfattr names entries as given; a trailing slash would make them miss the joined paths below.
  const dir = path.resolve(given);
  const lines: string[] = [];
  const inodes = new Map<bigint, string>();
  const xattrs = await xattrsOfTree(dir);
  const walk = async (relative: string) => {
    const full = relative === "" ? dir : path.join(dir, relative);
    const info = await lstat(full, { bigint: true });
    const type = info.isDirectory()
      ? "d"
      : info.isSymbolicLink()
        ? "l"
        : info.isFIFO()
          ? "p"
          : info.isCharacterDevice()
            ? "c"
            : "f";
    const attrs = [...(xattrs.get(full) ?? new Map<string, Buffer>())]
      .map(([key, value]) => `${key}=${value.toString("hex")}`)
      .sort()
      .join(",");
    let link = "";
    if (type === "l") link = await readlink(full);
    if (type === "f" && info.nlink > 1n) {
      link = `hardlink-group:${inodes.get(info.ino) ?? relative}`;
      if (!inodes.has(info.ino)) inodes.set(info.ino, relative);
    }
    const content =
      type === "f"
        ? createHash("sha256")
            .update(await readFile(full))
            .digest("hex")
            .slice(0, 16)
        : "";
    const mode = (info.mode & 0o7777n).toString(8);
    lines.push(
      [relative || ".", type, mode, info.uid, info.gid, info.rdev, content, link, attrs, info.mtimeNs].join(
        " ",
      ),
    );
    if (type === "d")
      for (const name of (await readdir(full)).sort()) await walk(relative ? `${relative}/${name}` : name);
  };
  await walk("");
  return lines;
}

/**
 * Two tree descriptions are the same, mtimes within `toleranceNs`: Node sets times through a double
 * (about 0.25 us of precision today), so a restored mtime can differ from the archived one below that.
 */
export function sameTree(
  actual: readonly string[],
  expected: readonly string[],
  toleranceNs = 1000n,
): string[] {
  const split = (line: string) => {
    const at = line.lastIndexOf(" ");
    return { rest: line.slice(0, at), mtime: BigInt(line.slice(at + 1)) };
  };
  return actual.map((line, index) => {
    const want = expected[index];
    if (want === undefined) return line;
    const a = split(line);
    const b = split(want);
    const close = a.mtime - b.mtime <= toleranceNs && b.mtime - a.mtime <= toleranceNs;
    return close && a.rest === b.rest ? want : line;
  });
}

export const BYTETREE = path.resolve(import.meta.dirname, "../support/fixtures/bytetree.py");

export interface Entry {
  path: string;
  type: string;
  mtime_ns: number;
  [key: string]: unknown;
}

/** Python's byte-exact description of a tree (names hex-encoded). */
export async function describeBytes(dir: string): Promise<Entry[]> {
  const out = (await run("python3", [BYTETREE, "describe", dir])).stdout;
  return out
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Entry);
}

/** The same trees, mtimes within 1 us: Node sets restored times through a double (see README). */
export function expectSameTree(actual: Entry[], expected: Entry[]): void {
  expect(actual.map(({ mtime_ns, ...rest }) => rest)).toEqual(expected.map(({ mtime_ns, ...rest }) => rest));
  for (const [index, entry] of actual.entries())
    expect(Math.abs(entry.mtime_ns - (expected[index] as Entry).mtime_ns), entry.path).toBeLessThanOrEqual(
      1000,
    );
}

/** A config.yml in `dir` for these volumes under `prefix`. */
export async function config(dir: string, volumes: string[], prefix = "p"): Promise<string> {
  const file = path.join(dir, `config-${prefix.replaceAll("/", "_")}.yml`);
  await writeFile(file, `prefix: ${prefix}\nvolumes:\n${volumes.map((v) => `  - ${v}\n`).join("")}`);
  return file;
}

export type Started = ChildProcess & {
  output: Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
};

/** The built `snapshotter` started in the background (to be signalled), its output collected. */
export function start(args: string[], env: NodeJS.ProcessEnv = process.env): Started {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  const output = once(child, "exit").then(([status, signal]) => ({
    status: status as number | null,
    signal: signal as NodeJS.Signals | null,
    stdout,
    stderr,
  }));
  return Object.assign(child, { output });
}
