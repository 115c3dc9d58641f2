#!/usr/bin/env node
// Benchmark: restic backup/restore into restic's local backend vs. our rest-server over loopback.
// Same run, alternating, fresh repository each time, `sync` before each backup; also our server with
// --no-verify-upload (the cost of hashing) and two reference sinks (reference-sink.mjs): the floor
// (packs read and dropped) and a naive server that only writes and fsyncs.
// Prints medians, ratios and peak server RSS,
// then runs 8 concurrent restic clients into 8 repositories and checks them all.
// Usage: npm run bench:rest-server -- [--rounds N] [--scale F]   (runs the server on the pinned Node)
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const ROUNDS = option("--rounds", 5);
const SCALE = option("--scale", 1);
const MiB = 1024 * 1024;
const CLI = path.resolve(import.meta.dirname, "../dist/cli/rest-server.js");
const SINK = path.resolve(import.meta.dirname, "reference-sink.mjs");

function exec(command, argv, env = {}) {
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

async function timed(fn) {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function freePort() {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  return port;
}

/** >= 200 MB of incompressible files: 1 x 64 MiB down to 1,000 x 4 KiB. */
async function makeDataset(dir) {
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
    for (let i = 0; i < Math.max(1, Math.round(count * SCALE)); i++) {
      await writeFile(path.join(sub, `f${i}`), randomBytes(size));
      total += size;
    }
  }
  return total;
}

/** A server script (ours or the reference sink) on a free loopback port ("PORT" in its arguments). */
async function startServer(script, argv) {
  const port = await freePort();
  const child = spawn(process.execPath, [script, ...argv.map((arg) => arg.replace("PORT", String(port)))], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, STOWAGE_LOG_LEVEL: "warn" },
  });
  await new Promise((resolve) => child.stdout.once("data", resolve));
  return { process: child, port };
}

async function peakRss(pid) {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

async function main() {
  const work = await mkdtemp(path.join(os.tmpdir(), "stowage-bench-"));
  try {
    const data = path.join(work, "data");
    const bytes = await makeDataset(data);
    console.log(`dataset: ${(bytes / MiB).toFixed(0)} MiB in ${data}`);
    const serverRoot = path.join(work, "rest");
    // Our server as restic users run it; the same without SHA-256 verification (the difference is
    // what hashing costs here); the floor of restic over loopback (a sink that reads and drops every
    // pack); and a naive Node server that only writes and fsyncs packs (no checks, no hash).
    const server = await startServer(CLI, ["--path", serverRoot, "--listen", "127.0.0.1:PORT", "--no-auth"]);
    const unverified = await startServer(CLI, [
      "--path",
      path.join(work, "rest-no-verify"),
      "--listen",
      "127.0.0.1:PORT",
      "--no-auth",
      "--no-verify-upload",
    ]);
    const discard = await startServer(SINK, ["discard", "PORT", path.join(work, "sink-discard")]);
    const store = await startServer(SINK, ["store", "PORT", path.join(work, "sink-store")]);
    const env = (repo, name) => ({
      RESTIC_REPOSITORY: repo,
      RESTIC_PASSWORD: "bench",
      RESTIC_CACHE_DIR: path.join(work, `cache-${name}`),
    });
    const viaRest = (running, dir, restore = true) => ({
      repo: (name) => `rest:http://127.0.0.1:${running.port}/${name}/`,
      dir: (name) => path.join(dir, name),
      restore,
    });
    const kinds = {
      local: {
        repo: (name) => path.join(work, "local", name),
        dir: (name) => path.join(work, "local", name),
        restore: true,
      },
      rest: viaRest(server, serverRoot),
      "rest --no-verify-upload": viaRest(unverified, path.join(work, "rest-no-verify")),
      "floor: discard packs": viaRest(discard, path.join(work, "sink-discard"), false),
      "naive: write + fsync only": viaRest(store, path.join(work, "sink-store"), false),
    };
    const results = Object.fromEntries(Object.keys(kinds).map((kind) => [kind, { backup: [], restore: [] }]));
    const order = Object.keys(kinds);
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate the order so that no kind always runs right after the same other one.
      for (const kind of round % 2 === 0 ? order : [...order].reverse()) {
        const name = `${kind.replace(/\W+/g, "-")}-${round}`;
        const e = env(kinds[kind].repo(name), name);
        await exec("restic", ["init"], e);
        // Let the previous run's dirty pages reach the disk first, so that no run pays for another.
        await exec("sync", []);
        const backup = await timed(() => exec("restic", ["backup", "--host", "bench", data], e));
        results[kind].backup.push(backup);
        let restored = "";
        if (kinds[kind].restore) {
          const target = path.join(work, `restore-${name}`);
          const restore = await timed(() => exec("restic", ["restore", "latest", "--target", target], e));
          await rm(target, { recursive: true, force: true });
          results[kind].restore.push(restore);
          restored = `  restore ${restore.toFixed(2)} s`;
        }
        await rm(kinds[kind].dir(name), { recursive: true, force: true });
        await rm(e.RESTIC_CACHE_DIR, { recursive: true, force: true });
        console.log(`round ${round + 1} ${kind.padEnd(26)} backup ${backup.toFixed(2)} s${restored}`);
      }
    }
    // The ratio of the medians, and the median of each round's ratio to the local run beside it
    // (steadier when the machine drifts during the run).
    for (const what of ["backup", "restore"]) {
      const local = results.local[what];
      const lines = order
        .slice(1)
        .filter((kind) => results[kind][what].length > 0)
        .map((kind) => {
          const values = results[kind][what];
          const paired = median(values.map((value, round) => value / local[round]));
          return `\n  ${kind.padEnd(26)} ${median(values).toFixed(2)} s  ratio ${(median(values) / median(local)).toFixed(3)}  paired ${paired.toFixed(3)}`;
        });
      const target = what === "backup" ? "   (target: rest <= 1.03)" : "";
      console.log(`${what} medians: local ${median(local).toFixed(2)} s${target}${lines.join("")}`);
    }
    for (const extra of [unverified, discard, store]) {
      extra.process.kill("SIGTERM");
      await once(extra.process, "exit");
    }

    const peakSingle = await peakRss(server.process.pid);
    console.log(`peak server RSS, one client at a time: ${(peakSingle / MiB).toFixed(1)} MiB`);

    // 8 concurrent clients into 8 repositories; all must succeed and check clean.
    const small = path.join(data, "size-2097152");
    const clients = Array.from({ length: 8 }, (_, i) =>
      env(`rest:http://127.0.0.1:${server.port}/concurrent/c${i}/`, `c${i}`),
    );
    const concurrent = await timed(() =>
      Promise.all(
        clients.map(async (e) => {
          await exec("restic", ["init"], e);
          await exec("restic", ["backup", small], e);
          await exec("restic", ["check", "--read-data"], e);
        }),
      ),
    );
    console.log(`8 concurrent clients: all backed up and checked clean in ${concurrent.toFixed(2)} s`);
    console.log(
      `peak server RSS overall (incl. 8 concurrent clients): ${((await peakRss(server.process.pid)) / MiB).toFixed(1)} MiB (target <= 120 MiB)`,
    );
    server.process.kill("SIGTERM");
    await once(server.process, "exit");
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
