#!/usr/bin/env node
// Benchmark: whole-command wall time of `wafers stack NAME` for stacks of depth 1, 10, 100 and 500
// (median of RUNS stack/unstack cycles, after one warm-up), split into Node start-up (`wafers
// --version`), the mount itself (mount(8) with the same options, timed alone) and the rest. With
// WAFERS_ORIGINAL=/path/to/index.sh (jessetane/wafers, not shipped here) the original bash tool is
// timed on the same chains in the same run. Run as root after `npm run build`.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "..");
const CLI = path.join(ROOT, "dist/cli/wafers.js");
const RUNS = Number(process.env.RUNS ?? 5);
const DEPTHS = [1, 10, 100, 500];
const ORIGINAL = process.env.WAFERS_ORIGINAL;

const work = mkdtempSync(path.join(os.tmpdir(), "stowage-bench-wafers-"));
const wafersDir = path.join(work, "wafers");
const stacksDir = path.join(work, "machines");
const env = { ...process.env, WAFERS: wafersDir, STACKS: stacksDir };

/** 60-character names, as the deep-stack test uses. */
const nameOf = (index) => `layer-${String(index).padStart(3, "0")}-${"x".repeat(50)}`;

function buildChain() {
  for (let index = 0; index <= Math.max(...DEPTHS); index++) {
    const dir = path.join(wafersDir, nameOf(index));
    mkdirSync(path.join(dir, "data"), { recursive: true });
    writeFileSync(path.join(dir, "data", `file-${index}`), `${index}\n`);
    if (index > 0) {
      mkdirSync(path.join(dir, "work"));
      writeFileSync(path.join(dir, "parent"), `${nameOf(index - 1)}\n`);
    }
  }
}

function timeMs(command, args, options = {}) {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { env, stdio: ["ignore", "pipe", "pipe"], ...options });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return { ms, ok: result.status === 0, stderr: String(result.stderr ?? "") };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

function unmount(target) {
  spawnSync("umount", [target], { stdio: "ignore" });
  spawnSync("rmdir", [target], { stdio: "ignore" });
}

/** mount(8) alone, as wafers calls it: short relative links from a temp dir, pinned options. */
function mountOnly(depth) {
  const links = mkdtempSync(path.join(os.tmpdir(), "wafers-bench-links-"));
  const top = nameOf(depth);
  for (let i = 0; i < depth; i++)
    symlinkSync(path.join(wafersDir, nameOf(depth - 1 - i), "data"), path.join(links, String(i)));
  const target = path.join(stacksDir, top);
  mkdirSync(target, { recursive: true });
  const options = [
    `lowerdir=${Array.from({ length: depth }, (_, i) => i).join(":")}`,
    `upperdir=${path.join(wafersDir, top, "data")}`,
    `workdir=${path.join(wafersDir, top, "work")}`,
    "index=off,redirect_dir=off,metacopy=off,xino=off",
  ].join(",");
  const { ms, ok, stderr } = timeMs("mount", ["-t", "overlay", "-o", options, "wafers", target], {
    cwd: links,
  });
  rmSync(links, { recursive: true, force: true });
  unmount(target);
  if (!ok) throw new Error(`mount failed: ${stderr}`);
  return ms;
}

function cycle(command, args, depth) {
  const top = nameOf(depth);
  const result = timeMs(command, [...args, "stack", top]);
  unmount(path.join(stacksDir, top));
  return result;
}

try {
  buildChain();
  const node = process.execPath;
  cycle(node, [CLI], 1);
  const startup = median(Array.from({ length: RUNS }, () => timeMs(node, [CLI, "--version"]).ms));
  console.log(`node ${process.version}, ${RUNS} runs per figure, medians in ms`);
  console.log(`start-up (wafers --version): ${startup.toFixed(1)}`);
  console.log("depth  wafers stack  mount(8) alone  start-up  rest  original");
  for (const depth of DEPTHS) {
    const ours = [];
    const mounts = [];
    const original = [];
    for (let run = 0; run < RUNS; run++) {
      const result = cycle(node, [CLI], depth);
      if (!result.ok) throw new Error(`wafers stack failed at depth ${depth}: ${result.stderr}`);
      ours.push(result.ms);
      mounts.push(mountOnly(depth));
      if (ORIGINAL) {
        const theirs = cycle("bash", [ORIGINAL], depth);
        original.push(theirs.ok ? theirs.ms : Number.NaN);
      }
    }
    const total = median(ours);
    const mount = median(mounts);
    const theirs = ORIGINAL ? (original.some(Number.isNaN) ? "fails" : median(original).toFixed(1)) : "-";
    console.log(
      `${String(depth).padStart(5)}  ${total.toFixed(1).padStart(12)}  ${mount.toFixed(1).padStart(14)}  ${startup
        .toFixed(1)
        .padStart(8)}  ${(total - startup - mount).toFixed(1).padStart(4)}  ${theirs}`,
    );
  }
} finally {
  execFileSync("sh", [
    "-c",
    `grep -q " ${stacksDir}/" /proc/self/mountinfo && umount ${stacksDir}/* || true`,
  ]);
  rmSync(work, { recursive: true, force: true });
}
