// Helpers shared by the benchmarks.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { shebangFlags } from "../scripts/node-flags.mjs";

export const MiB = 1024 * 1024;
export const NODE = path.resolve(import.meta.dirname, "../node_modules/node/bin/node");
export const REST_SERVER = path.resolve(import.meta.dirname, "../dist/cli/rest-server.js");
/** Our rest-server as its command runs it: node with the flags of its #! line. */
const OURS = [...shebangFlags(REST_SERVER), REST_SERVER];

export const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Run a command to the end, synchronously; its output, or an error with its stderr (unless allowFail). */
export function sh(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.status !== 0 && !options.allowFail)
    throw new Error(`${command} ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  return result;
}

/** Run a command to the end; its stderr is in the error when it fails. */
export function exec(command, argv, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, {
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (c) => {
      stderr += c;
    });
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${argv.join(" ")}: ${code}\n${stderr}`)),
    );
  });
}

/** Seconds `fn` took (awaited). */
export async function timed(fn) {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export async function freePort() {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  return port;
}

/** Peak resident set (VmHWM) of a process, in bytes. */
export async function peakRss(pid) {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/**
 * A rest-server (ours on the pinned Node, or a Go binary) on a free loopback port, ready once it
 * prints upstream's start line on stderr. `argv` is everything but --listen.
 */
export async function startRestServer(argv, { binary, env = {} } = {}) {
  const port = await freePort();
  const listen = ["--listen", `127.0.0.1:${port}`];
  const child = binary
    ? spawn(binary, [...argv, ...listen], {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, ...env },
      })
    : spawn(NODE, [...OURS, ...argv, ...listen], {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, STOWAGE_LOG_LEVEL: "warn", ...env },
      });
  await new Promise((resolve, reject) => {
    let seen = "";
    const onData = (chunk) => {
      seen += chunk;
      if (seen.includes("start server on")) {
        child.stderr.off("data", onData);
        child.off("exit", onExit);
        child.stderr.resume();
        resolve();
      }
    };
    const onExit = (code) => reject(new Error(`rest-server exited ${code}: ${seen}`));
    child.stderr.on("data", onData);
    child.once("exit", onExit);
  });
  return { process: child, port, url: `http://127.0.0.1:${port}` };
}

export async function stop(running) {
  running.process.kill("SIGTERM");
  await once(running.process, "exit");
}

/** >= 200 MB of incompressible files: 1 x 64 MiB down to 1,000 x 4 KiB (`scale` multiplies the counts). */
export async function makeDataset(dir, scale = 1) {
  const plan = [
    [1, 64 * MiB],
    [1, 32 * MiB],
    [2, 16 * MiB],
    [16, 2 * MiB],
    [100, 256 * 1024],
    [200, 128 * 1024],
    [1000, 4 * 1024],
  ];
  let total = 0;
  for (const [count, size] of plan) {
    const sub = path.join(dir, `size-${size}`);
    await mkdir(sub, { recursive: true });
    for (let i = 0; i < Math.max(1, Math.round(count * scale)); i++) {
      await writeFile(path.join(sub, `f${i}`), randomBytes(size));
      total += size;
    }
  }
  return total;
}
