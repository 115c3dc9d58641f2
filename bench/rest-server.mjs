#!/usr/bin/env node
// Benchmark: restic backup/restore into restic's local backend vs. our rest-server over loopback.
// Same run, alternating, fresh repository each time; prints medians, ratios and peak server RSS,
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
const ROUNDS = option("--rounds", 3);
const SCALE = option("--scale", 1);
const MiB = 1024 * 1024;
const CLI = path.resolve(import.meta.dirname, "../dist/cli/rest-server.js");

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
    const port = await freePort();
    const serverRoot = path.join(work, "rest");
    const server = spawn(
      process.execPath,
      [CLI, "--path", serverRoot, "--listen", `127.0.0.1:${port}`, "--no-auth"],
      {
        stdio: ["ignore", "pipe", "inherit"],
        env: { ...process.env, STOWAGE_LOG_LEVEL: "warn" },
      },
    );
    await new Promise((resolve) => server.stdout.once("data", resolve));
    const env = (repo, name) => ({
      RESTIC_REPOSITORY: repo,
      RESTIC_PASSWORD: "bench",
      RESTIC_CACHE_DIR: path.join(work, `cache-${name}`),
    });
    const results = { local: { backup: [], restore: [] }, rest: { backup: [], restore: [] } };
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of round % 2 === 0 ? ["local", "rest"] : ["rest", "local"]) {
        const name = `${kind}-${round}`;
        const repo =
          kind === "local" ? path.join(work, "local", name) : `rest:http://127.0.0.1:${port}/${name}/`;
        const e = env(repo, name);
        await exec("restic", ["init"], e);
        const backup = await timed(() => exec("restic", ["backup", "--host", "bench", data], e));
        const target = path.join(work, `restore-${name}`);
        const restore = await timed(() => exec("restic", ["restore", "latest", "--target", target], e));
        await rm(target, { recursive: true, force: true });
        if (kind === "local") await rm(repo, { recursive: true, force: true });
        else await rm(path.join(serverRoot, name), { recursive: true, force: true });
        await rm(e.RESTIC_CACHE_DIR, { recursive: true, force: true });
        results[kind].backup.push(backup);
        results[kind].restore.push(restore);
        console.log(
          `round ${round + 1} ${kind.padEnd(5)} backup ${backup.toFixed(2)} s  restore ${restore.toFixed(2)} s`,
        );
      }
    }
    const ratio = (what) => median(results.rest[what]) / median(results.local[what]);
    console.log(
      `backup  median: local ${median(results.local.backup).toFixed(2)} s, rest ${median(results.rest.backup).toFixed(2)} s, ratio rest/local ${ratio("backup").toFixed(3)} (target <= 1.03)`,
    );
    console.log(
      `restore median: local ${median(results.local.restore).toFixed(2)} s, rest ${median(results.rest.restore).toFixed(2)} s, ratio rest/local ${ratio("restore").toFixed(3)}`,
    );

    const peakSingle = await peakRss(server.pid);
    console.log(`peak server RSS, one client at a time: ${(peakSingle / MiB).toFixed(1)} MiB`);

    // 8 concurrent clients into 8 repositories; all must succeed and check clean.
    const small = path.join(data, "size-2097152");
    const clients = Array.from({ length: 8 }, (_, i) =>
      env(`rest:http://127.0.0.1:${port}/concurrent/c${i}/`, `c${i}`),
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
      `peak server RSS overall (incl. 8 concurrent clients): ${((await peakRss(server.pid)) / MiB).toFixed(1)} MiB (target <= 120 MiB)`,
    );
    server.kill("SIGTERM");
    await once(server, "exit");
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
