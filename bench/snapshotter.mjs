#!/usr/bin/env node
// Benchmark: `snapshotter backup` / `restore` against GNU `tar -cf` / `tar -xpf` of the same tree
// with the same metadata (--xattrs --acls), alternating, median of RUNS; peak RSS (VmHWM) of each
// snapshotter run. Two trees (TREES=mixed,small picks): "mixed", a few large files and thousands
// of small ones, SCALE_GIB in size (default 1); "small", SMALL_FILES files of 2 KB (default
// 100,000) in directories of 1,000, the per-file cost (mail, thumbnails, node_modules). Run at two
// sizes to see memory stay flat. Root, after `npm run build` (STOWAGE_BIN: after `npm run dist`).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { shebangFlags } from "../scripts/node-flags.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const CLI = path.join(ROOT, "dist/cli/snapshotter.js");
/**
 * `node` with the flags of the command's #! line (scripts/node-flags.mjs), or with
 * STOWAGE_BIN=dist/stowage-linux-x64 the self-contained executable (which has the same flags).
 */
const COMMAND = process.env.STOWAGE_BIN
  ? [path.resolve(process.env.STOWAGE_BIN), "snapshotter"]
  : [process.execPath, ...shebangFlags(CLI), CLI];
const snapshotter = (...args) => measure(COMMAND[0], [...COMMAND.slice(1), ...args]);
const RUNS = Number(process.env.RUNS ?? 3);
const SCALE = Number(process.env.SCALE_GIB ?? 1);
const SMALL_FILES = Number(process.env.SMALL_FILES ?? 100_000);
const TREES = (process.env.TREES ?? "mixed,small").split(",");
const work = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "stowage-bench-snap-"));
const volume = path.join(work, "volume");

function makeSmallTree() {
  const content = randomBytes(2048);
  for (let i = 0; i < SMALL_FILES; i++) {
    const dir = path.join(volume, `d${Math.floor(i / 1000)}`);
    if (i % 1000 === 0) mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `f${i}`), content);
  }
}

function makeMixedTree() {
  const large = Math.round(4 * SCALE);
  const chunk = randomBytes(8 * 1024 * 1024);
  mkdirSync(path.join(volume, "large"), { recursive: true });
  for (let i = 0; i < large; i++) {
    const parts = [];
    for (let k = 0; k < 25; k++) parts.push(chunk);
    writeFileSync(path.join(volume, "large", `blob-${i}`), Buffer.concat(parts)); // 200 MiB
  }
  const small = Math.round(5000 * SCALE);
  for (let i = 0; i < small; i++) {
    const dir = path.join(volume, "small", `d${i % 50}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, `f${i}`),
      chunk.subarray(i % 4096, (i % 4096) + 1024 + ((i * 7919) % 65536)),
    );
  }
}

/** Run a command; wall time and peak RSS (VmHWM, polled) in MiB. */
function measure(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"], ...options });
    let peak = 0;
    let stderr = "";
    child.stderr.on("data", (c) => {
      stderr += c;
    });
    const poll = setInterval(() => {
      try {
        const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
        if (match) peak = Math.max(peak, Number(match[1]) / 1024);
      } catch {}
    }, 10);
    child.on("exit", (code) => {
      clearInterval(poll);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) reject(new Error(`${command} ${args.join(" ")} failed (${code}): ${stderr}`));
      else resolve({ seconds, peak });
    });
  });
}

const sync = () => measure("sync", []);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function mixed() {
  makeMixedTree();
  const config = path.join(work, "config.yml");
  writeFileSync(config, `prefix: bench\nvolumes: [${volume}]\n`);
  const ours = { backup: [], restore: [], rssBackup: [], rssRestore: [] };
  const gnu = { backup: [], restore: [], durable: [] };
  for (let run = 0; run < RUNS; run++) {
    const archive = path.join(work, "ours.tar");
    const gnuArchive = path.join(work, "gnu.tar");
    rmSync(archive, { force: true });
    rmSync(gnuArchive, { force: true });
    await sync();
    const b = await snapshotter("init", archive).then(() =>
      snapshotter("backup", "--config", config, "--archive", archive),
    );
    ours.backup.push(b.seconds);
    ours.rssBackup.push(b.peak);
    await sync();
    gnu.backup.push(
      (await measure("tar", ["--xattrs", "--acls", "-cf", gnuArchive, "-C", work, "volume"])).seconds,
    );
    rmSync(gnuArchive, { force: true });
    await sync();
    // Like for like: snapshotter fsyncs the archive before it reports success, GNU tar does not.
    const durable = `tar --xattrs --acls -cf "$0" -C "$1" volume && sync "$0"`;
    gnu.durable.push((await measure("sh", ["-c", durable, gnuArchive, work])).seconds);
    rmSync(volume, { recursive: true, force: true });
    await sync();
    const r = await snapshotter("restore", "--config", config, "--archive", archive);
    ours.restore.push(r.seconds);
    ours.rssRestore.push(r.peak);
    rmSync(volume, { recursive: true, force: true });
    await sync();
    gnu.restore.push((await measure("tar", ["--xattrs", "--acls", "-xpf", gnuArchive, "-C", work])).seconds);
  }
  console.log(
    `mixed tree: ${SCALE} GiB scale (${Math.round(4 * SCALE)} x 200 MiB, ${Math.round(5000 * SCALE)} small files), ${RUNS} runs, medians`,
  );
  line("backup", ours.backup, gnu.backup);
  line("backup*", ours.backup, gnu.durable);
  console.log("         (* GNU tar followed by sync of the archive: durable like ours)");
  line("restore", ours.restore, gnu.restore);
  console.log(
    `peak RSS: backup ${Math.max(...ours.rssBackup).toFixed(0)} MiB, restore ${Math.max(...ours.rssRestore).toFixed(0)} MiB`,
  );
  rmSync(volume, { recursive: true, force: true });
}

/** Backups only (the per-file cost is the walk, xattrs and headers), alternating with GNU tar. */
async function small() {
  makeSmallTree();
  const config = path.join(work, "config.yml");
  writeFileSync(config, `prefix: bench\nvolumes: [${volume}]\n`);
  const archive = path.join(work, "ours.tar");
  const gnuArchive = path.join(work, "gnu.tar");
  const ours = { backup: [], rss: [] };
  const gnu = { backup: [], plain: [] };
  for (let run = 0; run < RUNS; run++) {
    rmSync(archive, { force: true });
    await sync();
    const b = await snapshotter("backup", "--config", config, "--archive", archive);
    ours.backup.push(b.seconds);
    ours.rss.push(b.peak);
    rmSync(gnuArchive, { force: true });
    await sync();
    gnu.backup.push(
      (await measure("tar", ["--xattrs", "--acls", "-cf", gnuArchive, "-C", work, "volume"])).seconds,
    );
    rmSync(gnuArchive, { force: true });
    await sync();
    gnu.plain.push((await measure("tar", ["-cf", gnuArchive, "-C", work, "volume"])).seconds);
  }
  console.log(`small files: ${SMALL_FILES} x 2 KB in directories of 1,000, ${RUNS} runs, medians`);
  line("backup", ours.backup, gnu.backup);
  console.log(`         (GNU tar without --xattrs --acls: ${median(gnu.plain).toFixed(2)} s)`);
  console.log(`peak RSS: backup ${Math.max(...ours.rss).toFixed(0)} MiB`);
  rmSync(volume, { recursive: true, force: true });
}

const line = (what, a, b) =>
  console.log(
    `${what.padEnd(8)} snapshotter ${median(a).toFixed(2)} s   GNU tar ${median(b).toFixed(2)} s   ratio ${(median(a) / median(b)).toFixed(3)}`,
  );

try {
  if (TREES.includes("mixed")) await mixed();
  if (TREES.includes("small")) await small();
} finally {
  rmSync(work, { recursive: true, force: true });
}
