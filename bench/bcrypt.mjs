#!/usr/bin/env node
// Login cost: one bcrypt comparison, alone and 8 at once, with the native addon (what the
// executable loads) and with bcryptjs (its fallback), for a hash made by Apache's `htpasswd -B`.
// Also times the event loop's longest stall during the 8 (bcryptjs runs on the main thread).
import { execFileSync } from "node:child_process";
import bcrypt from "bcrypt";
import bcryptjs from "bcryptjs";

const COST = Number(process.env.COST ?? 10);
const line = execFileSync("htpasswd", ["-nbB", "-C", String(COST), "user", "secret"])
  .toString()
  .trim();
const hash = line.slice(line.indexOf(":") + 1).replace(/^\$2y\$/, "$2b$");
const impls = { native: (p, h) => bcrypt.compare(p, h), bcryptjs: (p, h) => bcryptjs.compare(p, h) };

async function measure(compare, parallel) {
  let worst = 0;
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  const started = performance.now();
  await Promise.all(Array.from({ length: parallel }, () => compare("secret", hash)));
  const ms = performance.now() - started;
  clearInterval(tick);
  return { ms, stall: worst };
}

console.log(`cost ${COST}, median of 5`);
for (const [name, compare] of Object.entries(impls)) {
  for (const parallel of [1, 8]) {
    const runs = [];
    for (let i = 0; i < 5; i++) runs.push(await measure(compare, parallel));
    runs.sort((a, b) => a.ms - b.ms);
    const mid = runs[2];
    console.log(
      `${name.padEnd(9)} x${parallel}: ${mid.ms.toFixed(0).padStart(5)} ms   longest event-loop stall ${mid.stall.toFixed(0)} ms`,
    );
  }
}
