#!/usr/bin/env node
// Benchmark: one sidecar keeping ENGINES Docker hosts right (default 10 real dockerd, each in its
// own network namespace, each with its own real Backrest), CONTAINERS labelled containers on each
// (default 50). Prints: `reconcile --targets` of all (the first, which sets every plan, and a second
// with nothing to change), wall time and the process's peak RSS; then the daemon following every
// engine's events: ROUNDS times a labelled container is made (`docker run`) on all engines at once,
// and the time from then to its plan set in that host's Backrest (the daemon's SetConfig answered,
// from its log) is taken per event; median and 90th percentile, and the daemon's peak RSS. Targets (issue 30): reconcile
// under 3 s, memory under 150 MB, event to plan under 1 s at the median.
// Root, after `npm run build`; needs BACKREST_BIN, BACKREST_RESTIC_BIN and the test image
// stowage-test/busybox:1 (made by the integration tests).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { shebangFlags } from "../scripts/node-flags.mjs";
import { median } from "./lib.mjs";
import { requireBackrest, startBackrest } from "./lib-backrest.mjs";
import { closeEngines, startEngines } from "./lib-engines.mjs";

requireBackrest();
const ROOT = path.resolve(import.meta.dirname, "..");
const CLI = path.join(ROOT, "dist/cli/backrest-sidecar.js");
const ENGINES = Number(process.env.ENGINES ?? 10);
const CONTAINERS = Number(process.env.CONTAINERS ?? 50);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const work = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "stowage-bench-fleet-"));
const percentile = (values, p) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];
const mib = (bytes) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

/** The sidecar as its command runs it, its peak RSS polled from /proc until it ends. */
function sidecar(args, { detached = false } = {}) {
  const child = spawn(process.execPath, [...shebangFlags(CLI), CLI, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, BACKREST_SIDECAR_STATE_DIR: path.join(work, "state") },
    detached,
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  let peak = 0;
  const poll = setInterval(async () => {
    const status = await readFile(`/proc/${child.pid}/status`, "utf8").catch(() => "");
    peak = Math.max(peak, Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024);
  }, 20);
  const done = new Promise((resolve) =>
    child.on("exit", (code) => {
      clearInterval(poll);
      resolve({ code, stderr, peak });
    }),
  );
  return { child, done, peak: () => peak, stderr: () => stderr };
}

const engines = [];
const backrests = [];
const streams = [];
let daemon;
try {
  console.log(`starting ${ENGINES} engines and ${ENGINES} Backrests ...`);
  engines.push(...(await startEngines(ENGINES, { parent: work })));
  for (let i = 0; i < ENGINES; i++)
    backrests.push(await startBackrest(path.join(work, `backrest-${i}`), `host${i}`));
  for (const [i, b] of backrests.entries())
    await b.call("AddRepo", {
      repo: { id: "default", uri: path.join(work, `repo-${i}`), password: "bench" },
    });
  const data = path.join(work, "data");
  for (const engine of engines)
    await engine.createContainers(CONTAINERS, {
      prefix: `${engine.name}-app`,
      labels: (i) => ({ "backrest.enable": "true", "com.docker.compose.service": `svc${i}` }),
      binds: [`${data}:/data`],
    });
  const targets = path.join(work, "targets.yaml");
  writeFileSync(
    targets,
    stringify({
      hosts: engines.map((e, i) => ({
        name: `host${i}`,
        docker: e.host,
        backrest: { url: backrests[i].url },
      })),
    }),
  );
  for (const round of ["first (every plan set)", "second (nothing to change)"]) {
    const started = process.hrtime.bigint();
    const run = sidecar(["reconcile", "--targets", targets]);
    const { code, stderr, peak } = await run.done;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (code !== 0 && code !== 2) throw new Error(`reconcile exited ${code}: ${stderr.slice(-2000)}`);
    console.log(
      `reconcile --targets, ${ENGINES} hosts x ${CONTAINERS} containers, ${round}: ${seconds.toFixed(2)} s, peak RSS ${mib(peak)} (targets: < 3 s, < 150 MB)`,
    );
  }

  daemon = sidecar(["daemon", "--targets", targets, "--with-events", "--interval", "1h"]);
  for (let i = 0; (daemon.stderr().match(/"reconcile\.complete"/g) ?? []).length < ENGINES; i++) {
    if (i > 1200) throw new Error(`the daemon did not reconcile every host: ${daemon.stderr().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // The daemon's own log says when Backrest took each plan: the `config.written` line for that
  // host (SetConfig answered: the plan is live there) just before the `plan.rendered` lines of what
  // it wrote. Polling ten Backrests' GetConfig instead would load the machine more than the daemon does.
  // With STOWAGE_LOG_LEVEL=debug the daemon also logs when each reconcile began.
  const written = (host, planId) => {
    let at;
    let began;
    for (const line of daemon.stderr().split("\n")) {
      if (!line.startsWith("{")) continue;
      const entry = JSON.parse(line);
      if (entry.host !== host) continue;
      if (entry.action === "reconcile.start") began = Date.parse(entry.time);
      else if (entry.action === "config.written") at = Date.parse(entry.time);
      else if (entry.action === "reconcile.complete") at = undefined;
      else if (entry.action === "plan.rendered" && entry.plan_id === planId && entry.changed && at)
        return { at, began };
    }
    return undefined;
  };
  // Each engine's own create events, read as the daemon reads them: their timestamps start the
  // clock of "event to plan".
  const eventAt = new Map();
  for (const engine of engines) {
    const stream = await engine.client().getEvents({ filters: { type: ["container"], event: ["create"] } });
    streams.push(stream);
    let partial = "";
    stream.on("data", (chunk) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop();
      for (const line of lines.filter(Boolean)) {
        const event = JSON.parse(line);
        eventAt.set(event.Actor.Attributes.name, event.timeNano / 1e6);
      }
    });
  }
  const latencies = [];
  const fromCreated = [];
  const fromEvent = [];
  const toStart = [];
  const reconciling = [];
  const reference = [];
  /** `docker run` of a container `name` on `engine`, with `labels`, as a user starts one. */
  const dockerRun = (engine, name, labels) =>
    engine.docker([
      ...["run", "-d", "--name", name, "--network", "none"],
      ...labels.flatMap((label) => ["--label", label]),
      ...["-v", `${data}:/data`, "stowage-test/busybox:1", "sleep", "3600"],
    ]);
  for (let round = 0; round < ROUNDS; round++) {
    // All engines send an event at once: a labelled container made on each.
    const events = engines.map(async (engine, i) => {
      const name = `ev-${round}-${i}`;
      const planId = `backrest_sidecar_ev_${round}_${i}`;
      const t0 = Date.now();
      await dockerRun(engine, name, ["backrest.enable=true"]);
      for (;;) {
        const seen = written(`host${i}`, planId);
        if (seen !== undefined) return { ...seen, t0, engine, name };
        if (Date.now() - t0 > 60_000) throw new Error(`no plan ${planId} within 60 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    for (const { at, began, t0, engine, name } of await Promise.all(events)) {
      if (began !== undefined) {
        toStart.push(began - eventAt.get(name));
        reconciling.push(at - began);
      }
      latencies.push(at - t0);
      // The engine's own time of the container's creation (its create event follows it).
      const created = (await engine.docker(["inspect", "-f", "{{.Created}}", name])).stdout.trim();
      fromCreated.push(at - Date.parse(created.replace(/(\.\d{3})\d*/, "$1")));
      if (!eventAt.has(name)) throw new Error(`no create event seen for ${name}`);
      fromEvent.push(at - eventAt.get(name));
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  // The reference, at the same load: what a save takes in each Backrest itself (a UI-style
  // GetConfig + SetConfig of the unchanged config, all ten at once, each while an unlabelled
  // container starts on every engine), which every plan change costs. Measured after the event
  // rounds: a save between them would make every daemon's next write a modno conflict.
  for (let round = 0; round < ROUNDS; round++) {
    const saves = backrests.map(async (b, i) => {
      const started = dockerRun(engines[i], `ref-${round}-${i}`, []);
      await new Promise((r) => setTimeout(r, 200));
      const t = Date.now();
      await b.call("SetConfig", await b.call("GetConfig"));
      const took = Date.now() - t;
      await started;
      return took;
    });
    reference.push(...(await Promise.all(saves)));
    await new Promise((r) => setTimeout(r, 1000));
  }
  // Where the reconciles of the events spent their time: the engine's listing, Backrest's
  // GetConfig and SetConfig, our merge.
  const reconciles = daemon
    .stderr()
    .split("\n")
    .filter((line) => line.includes('"reconcile.complete"') && line.includes('"changed":true'))
    .map((line) => JSON.parse(line));
  const part = (key) => `${key.replace("_ms", "")} ${median(reconciles.map((r) => r[key] ?? 0))} ms`;
  console.log(
    `the daemon's reconciles that set a plan (${reconciles.length}), medians: ${["list_ms", "read_ms", "merge_ms", "write_ms"].map(part).join(", ")}`,
  );
  // Every plan is in its Backrest's live config.
  for (const [i, b] of backrests.entries()) {
    const ids = new Set(((await b.call("GetConfig")).plans ?? []).map((p) => p.id));
    for (let round = 0; round < ROUNDS; round++)
      if (!ids.has(`backrest_sidecar_ev_${round}_${i}`))
        throw new Error(`host${i}: plan of round ${round} missing`);
  }
  console.log(
    `reference, the same load: a save in Backrest itself (GetConfig + SetConfig, all ${ENGINES} at once): median ${(median(reference) / 1000).toFixed(2)} s`,
  );
  const seconds = (values) =>
    `median ${(median(values) / 1000).toFixed(2)} s, p90 ${(percentile(values, 0.9) / 1000).toFixed(2)} s`;
  console.log(
    `the engine's create event (its own timestamp) to the plan in that host's Backrest, ${ENGINES} engines at once x ${ROUNDS}: ${seconds(fromEvent)} (target: median < 1 s)`,
  );
  if (toStart.length > 0)
    console.log(
      `of which: the event to its reconcile beginning ${seconds(toStart)}; that reconcile to the plan set ${seconds(reconciling)}`,
    );
  console.log(
    `the container's creation time (\`Created\`, before the engine's create work) to its plan: ${seconds(fromCreated)}`,
  );
  console.log(
    `\`docker run\` invoked to its plan: ${seconds(latencies)}; the daemon's peak RSS ${mib(daemon.peak())} (target < 150 MB)`,
  );
} finally {
  for (const stream of streams) stream.destroy();
  if (daemon) {
    daemon.child.kill("SIGTERM");
    await daemon.done;
    if (process.env.DAEMON_LOG) writeFileSync(process.env.DAEMON_LOG, daemon.stderr());
  }
  for (const b of backrests) b.stop();
  await closeEngines(engines);
  rmSync(work, { recursive: true, force: true });
}
