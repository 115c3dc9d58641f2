#!/usr/bin/env node
// Benchmark: `snapshotter backup` / `restore` against GNU tar 1.34 (`tar --xattrs --acls -cf` /
// `-xpf`) on the same trees, in the same run, alternating (which one goes first alternates too):
// the median of RUNS of each, the median of the per-run ratios ("paired"), peak RSS (VmHWM, polled
// every 10 ms) of each run and the most anonymous memory seen (RssAnon: RSS without the program's
// own file pages, which the kernel shares with its page cache), and the load average
// (/proc/loadavg) before each run, since the machine may be shared. Trees (TREES, comma-separated; default mixed,small):
//   mixed    4 x 200 MiB and 5,000 small files (SCALE_GIB=1 scales it);
//   small    SMALL_FILES (100,000) files of 2 KB in directories of 1,000;
//   million  1,000,000 files of 2 KB (RUNS_MILLION runs, default 1), also with --million.
// Every restore goes into a new ext4 (mkfs on a loop device each time, inode tables written
// up front): a filesystem that just deleted as many files makes creating new ones slower in
// ways that have nothing to do with either program. The trees to back up are bind-mounted where
// the restores go (the archives name that path). With STOWAGE_BIN=dist/stowage-linux-x64 (after
// `npm run dist`) the self-contained executable runs in the same alternation as `node dist/cli`.
// Root, after `npm run build`. BENCH_DIR: where the trees, archives and images go (default tmp).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { shebangFlags } from "../scripts/node-flags.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const CLI = path.join(ROOT, "dist/cli/snapshotter.js");
const RUNS = Number(process.env.RUNS ?? 3);
const RUNS_MILLION = Number(process.env.RUNS_MILLION ?? 1);
const SCALE = Number(process.env.SCALE_GIB ?? 1);
const SMALL_FILES = Number(process.env.SMALL_FILES ?? 100_000);
const TREES = (process.env.TREES ?? "mixed,small").split(",");
if (process.argv.includes("--million") && !TREES.includes("million")) TREES.push("million");

/** The contestants: ours through node with the #! flags, the executable, GNU tar. */
const OURS = [{ name: "node", command: [process.execPath, ...shebangFlags(CLI), CLI] }];
if (process.env.STOWAGE_BIN)
  OURS.push({ name: "executable", command: [path.resolve(process.env.STOWAGE_BIN), "snapshotter"] });

const work = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "stowage-bench-snap-"));
const master = path.join(work, "master");
const mnt = path.join(work, "mnt");
const volume = path.join(mnt, "volume");
const image = path.join(work, "fs.img");
const archive = path.join(work, "ours.tar");
const gnuArchive = path.join(work, "gnu.tar");
const config = path.join(work, "config.yml");
writeFileSync(config, `prefix: bench\nvolumes: [${volume}]\n`);

/** CPU seconds (user + system) of the children this process has waited for, so far. */
function childrenCpu() {
  const fields = readFileSync("/proc/self/stat", "utf8");
  const rest = fields.slice(fields.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[13]) + Number(rest[14])) / 100; // cutime + cstime, in clock ticks
}

/**
 * Run a command; wall time, CPU time (its own and its children's), peak RSS (VmHWM, polled) and
 * the most anonymous memory seen, in MiB.
 */
function measure(command, args, env = process.env) {
  return new Promise((resolve, reject) => {
    const load = Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
    const cpuBefore = childrenCpu();
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"], env });
    let peak = 0;
    let anon = 0;
    let stderr = "";
    child.stderr.on("data", (c) => {
      stderr += c;
    });
    const poll = setInterval(() => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
        const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
        if (hwm) peak = Math.max(peak, Number(hwm[1]) / 1024);
        const anonymous = /RssAnon:\s+(\d+) kB/.exec(status);
        if (anonymous) anon = Math.max(anon, Number(anonymous[1]) / 1024);
      } catch {}
    }, 10);
    child.on("exit", (code) => {
      clearInterval(poll);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) reject(new Error(`${command} ${args.join(" ")} failed (${code}): ${stderr}`));
      else resolve({ seconds, cpu: childrenCpu() - cpuBefore, peak, anon, load });
    });
  });
}

const quiet = (command, args) => measure(command, args);
/** One of ours: `snapshotter VERB --config ... --archive ...`, measured. */
const snapshotter = (command, verb) =>
  measure(command[0], [...command.slice(1), verb, "--config", config, "--archive", archive]);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Nothing mounted at mnt/volume (the bind) or mnt (a loop filesystem). */
async function unmount() {
  for (const target of [volume, mnt]) await quiet("umount", ["-q", target]).catch(() => {});
}

/** A new, empty ext4 mounted at mnt, big enough for the tree, inode tables written now. */
async function freshFilesystem(gib, inodes) {
  await unmount();
  rmSync(image, { force: true });
  await quiet("truncate", ["-s", `${gib}G`, image]);
  await quiet("mkfs.ext4", [
    "-q",
    "-F",
    "-N",
    String(inodes),
    "-E",
    "lazy_itable_init=0,lazy_journal_init=0",
    image,
  ]);
  mkdirSync(mnt, { recursive: true });
  await quiet("mount", ["-o", "loop", image, mnt]);
}

/** The master tree where the archives say it is: bind-mounted at mnt/volume. */
async function bindMaster() {
  await unmount();
  mkdirSync(volume, { recursive: true });
  await quiet("mount", ["--bind", master, volume]);
}

function makeSmallTree(files) {
  const content = randomBytes(2048);
  for (let i = 0; i < files; i++) {
    const dir = path.join(master, `d${Math.floor(i / 1000)}`);
    if (i % 1000 === 0) mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `f${i}`), content);
  }
}

function makeMixedTree() {
  const large = Math.round(4 * SCALE);
  const chunk = randomBytes(8 * 1024 * 1024);
  mkdirSync(path.join(master, "large"), { recursive: true });
  for (let i = 0; i < large; i++) {
    const parts = [];
    for (let k = 0; k < 25; k++) parts.push(chunk);
    writeFileSync(path.join(master, "large", `blob-${i}`), Buffer.concat(parts)); // 200 MiB
  }
  const small = Math.round(5000 * SCALE);
  for (let i = 0; i < small; i++) {
    const dir = path.join(master, "small", `d${i % 50}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, `f${i}`),
      chunk.subarray(i % 4096, (i % 4096) + 1024 + ((i * 7919) % 65536)),
    );
  }
}

/** One figure per run of each contestant: seconds, peak MiB, load before it. */
function results() {
  return { ...Object.fromEntries(OURS.map(({ name }) => [name, []])), gnu: [], durable: [] };
}

/** The contestants of one run in this run's order (ours first on even runs, GNU tar first on odd). */
async function alternate(run, ours, gnu) {
  const order = [...OURS.map((one) => () => ours(one)), gnu];
  if (run % 2 === 1) order.reverse();
  for (const step of order) await step();
}

async function backups(tree, runs) {
  const figures = results();
  await bindMaster();
  for (let run = 0; run < runs; run++) {
    await alternate(
      run,
      async ({ name, command }) => {
        rmSync(archive, { force: true });
        await quiet("sync", []);
        figures[name].push(await snapshotter(command, "backup"));
      },
      async () => {
        rmSync(gnuArchive, { force: true });
        await quiet("sync", []);
        figures.gnu.push(
          await measure("tar", ["--xattrs", "--acls", "-cf", gnuArchive, "-C", mnt, "volume"]),
        );
        if (tree !== "mixed") return;
        // Like for like: snapshotter fsyncs the archive before it reports success, GNU tar does not.
        rmSync(gnuArchive, { force: true });
        await quiet("sync", []);
        const durable = `tar --xattrs --acls -cf "$0" -C "$1" volume && sync "$0"`;
        figures.durable.push(await measure("sh", ["-c", durable, gnuArchive, mnt]));
      },
    );
  }
  report(`${tree} backup`, figures);
  if (tree === "mixed") report(`${tree} backup*`, { ...figures, gnu: figures.durable }, "(* GNU tar + sync)");
}

async function restores(tree, runs, filesystem) {
  const figures = results();
  for (let run = 0; run < runs; run++) {
    await alternate(
      run,
      async ({ name, command }) => {
        await filesystem();
        await quiet("sync", []);
        figures[name].push(await snapshotter(command, "restore"));
      },
      async () => {
        await filesystem();
        await quiet("sync", []);
        figures.gnu.push(await measure("tar", ["--xattrs", "--acls", "-xpf", gnuArchive, "-C", mnt]));
      },
    );
  }
  report(`${tree} restore`, figures);
}

function report(what, figures, note = "") {
  const gnu = figures.gnu;
  for (const { name } of OURS) {
    const ours = figures[name];
    const paired = ours.map((one, i) => one.seconds / gnu[i].seconds);
    const loads = [...ours, ...gnu].map((one) => one.load);
    console.log(
      `${what.padEnd(16)} ${name.padEnd(10)} ${median(ours.map((o) => o.seconds)).toFixed(2)} s` +
        `   GNU tar ${median(gnu.map((g) => g.seconds)).toFixed(2)} s` +
        `   ratio ${(median(ours.map((o) => o.seconds)) / median(gnu.map((g) => g.seconds))).toFixed(3)}` +
        `   paired ${median(paired).toFixed(3)} [${paired.map((p) => p.toFixed(2)).join(" ")}]` +
        `   CPU ${median(ours.map((o) => o.cpu)).toFixed(2)} s vs ${median(gnu.map((g) => g.cpu)).toFixed(2)} s` +
        `   peak RSS ${Math.max(...ours.map((o) => o.peak)).toFixed(0)} MiB, anonymous ${Math.max(...ours.map((o) => o.anon)).toFixed(0)} (GNU tar ${Math.max(...gnu.map((g) => g.peak)).toFixed(0)})` +
        `   load ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} ${note}`,
    );
  }
}

async function bench(tree) {
  rmSync(master, { recursive: true, force: true });
  mkdirSync(master, { recursive: true });
  const runs = tree === "million" ? RUNS_MILLION : RUNS;
  if (tree === "mixed") makeMixedTree();
  else makeSmallTree(tree === "million" ? 1_000_000 : SMALL_FILES);
  const files = tree === "mixed" ? Math.round(5000 * SCALE) : tree === "million" ? 1_000_000 : SMALL_FILES;
  const gib = tree === "mixed" ? Math.ceil(2.5 * SCALE) + 1 : Math.ceil((files * 4096 * 1.3) / 2 ** 30) + 1;
  console.log(
    `${tree}: ${tree === "mixed" ? `${Math.round(4 * SCALE)} x 200 MiB + ${files} small files` : `${files} files of 2 KB in directories of 1,000`}, ${runs} run(s), medians`,
  );
  await backups(tree, runs);
  await restores(tree, runs, () => freshFilesystem(gib, Math.round(files * 1.2) + 10_000));
  await unmount();
}

console.log(
  `${os.cpus().length} CPUs (${os.cpus()[0]?.model}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.release()}`,
);
console.log(`uptime at start: ${readFileSync("/proc/loadavg", "utf8").trim()}`);
try {
  for (const tree of ["mixed", "small", "million"]) if (TREES.includes(tree)) await bench(tree);
} finally {
  await unmount();
  rmSync(work, { recursive: true, force: true });
  console.log(`uptime at end: ${readFileSync("/proc/loadavg", "utf8").trim()}`);
}
