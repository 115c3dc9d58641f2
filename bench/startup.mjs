#!/usr/bin/env node
// Start-up time: the self-contained executable (`npm run dist`) against `node dist/cli/...js` (the
// pinned Node) for the same commands, alternating, median of RUNS. After `npm run dist`.
import { spawnSync } from "node:child_process";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "..");
const RUNS = Number(process.env.RUNS ?? 20);
const exe = path.join(ROOT, `dist/stowage-linux-${process.arch}`);
const cases = [
  [
    "stowage --version",
    [exe, "--version"],
    [process.execPath, path.join(ROOT, "dist/cli/stowage.js"), "--version"],
  ],
  [
    "statecraft -e /etc",
    [exe, "statecraft", "-e", "/etc"],
    [process.execPath, path.join(ROOT, "dist/cli/statecraft.js"), "-e", "/etc"],
  ],
  [
    "wafers --help",
    [exe, "wafers", "--help"],
    [process.execPath, path.join(ROOT, "dist/cli/wafers.js"), "--help"],
  ],
];
const time = ([command, ...args]) => {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { stdio: "ignore" });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed`);
  return Number(process.hrtime.bigint() - started) / 1e6;
};
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
console.log(`${RUNS} runs each, median ms (node ${process.version})`);
for (const [label, sea, node] of cases) {
  const a = [];
  const b = [];
  for (let i = 0; i < RUNS; i++) {
    a.push(time(sea));
    b.push(time(node));
  }
  console.log(
    `${label.padEnd(20)} executable ${median(a).toFixed(1).padStart(6)}   node dist/cli ${median(b).toFixed(1).padStart(6)}`,
  );
}
