#!/usr/bin/env node
// Benchmark: `backrest-sidecar reconcile` over 300 labelled containers (created, not started, each
// with a named volume and a bind mount), whole command, median of RUNS (each run removes our plans
// first, so every run writes all 300); then the daemon's event-to-file latency: from `docker create`
// of a new labelled container until its plan is in the file, median of RUNS. Root, after
// `npm run build`; needs the local test image stowage-test/busybox:1 (made by the tests).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Docker from "dockerode";

const ROOT = path.resolve(import.meta.dirname, "..");
const CLI = path.join(ROOT, "dist/cli/backrest-sidecar.js");
const RUNS = Number(process.env.RUNS ?? 5);
const COUNT = Number(process.env.CONTAINERS ?? 300);
const IMAGE = "stowage-test/busybox:1";
const marker = `bench-${process.pid}`;
const docker = new Docker({ socketPath: "/var/run/docker.sock" });
const work = mkdtempSync(path.join(os.tmpdir(), "stowage-bench-sidecar-"));
const config = path.join(work, "config.json");
const only = ["--only-label", `io.stowage.bench=${marker}`];

async function create(name) {
  await docker.createContainer({
    name,
    Image: IMAGE,
    Cmd: ["sleep", "3600"],
    Labels: {
      "io.stowage.bench": marker,
      "backrest.enable": "true",
      "backrest.keep": "daily=7",
      "com.docker.compose.project": marker,
      "com.docker.compose.service": name,
    },
    HostConfig: { NetworkMode: "none", Binds: [`${name}-data:/data`, `${work}:/config:ro`] },
  });
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const seed = () =>
  writeFileSync(
    config,
    JSON.stringify({ repos: [{ id: "default", type: "local", url: "/repo" }], plans: [] }),
  );

try {
  const started = Date.now();
  for (let i = 0; i < COUNT; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, COUNT - i) }, (_, k) => create(`${marker}-svc${i + k}`)),
    );
  }
  console.log(`created ${COUNT} containers in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const reconcile = [];
  const noop = [];
  for (let run = 0; run < RUNS; run++) {
    seed();
    let t = process.hrtime.bigint();
    const first = spawnSync(process.execPath, [CLI, "reconcile", "--config", config, ...only], {
      stdio: "ignore",
    });
    reconcile.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (first.status !== 0) throw new Error(`reconcile exited ${first.status}`);
    t = process.hrtime.bigint();
    const second = spawnSync(process.execPath, [CLI, "reconcile", "--config", config, ...only], {
      stdio: "ignore",
    });
    noop.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (second.status !== 2) throw new Error(`no-op reconcile exited ${second.status}`);
  }
  const plans = JSON.parse(readFileSync(config, "utf8")).plans.length;
  console.log(
    `reconcile, ${plans} plans written: median ${median(reconcile).toFixed(0)} ms (target <= 1500)`,
  );
  console.log(`reconcile, nothing to change: median ${median(noop).toFixed(0)} ms`);

  const daemon = spawn(
    process.execPath,
    [CLI, "daemon", "--config", config, "--with-events", "--interval", "1h", ...only],
    { stdio: "ignore" },
  );
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const latencies = [];
  for (let run = 0; run < RUNS; run++) {
    const name = `${marker}-late${run}`;
    const t = Date.now();
    await create(name);
    const id = `backrest_sidecar_${name.replaceAll("-", "_")}`;
    while (!readFileSync(config, "utf8").includes(id)) {
      if (Date.now() - t > 10_000) throw new Error("the daemon never wrote the plan");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    latencies.push(Date.now() - t);
  }
  daemon.kill("SIGTERM");
  console.log(
    `daemon event -> plan in the file: median ${median(latencies)} ms (${latencies.join(", ")}; 300 ms of it is the debounce)`,
  );
} finally {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`io.stowage.bench=${marker}`] },
  });
  for (const c of containers) await docker.getContainer(c.Id).remove({ force: true, v: true });
  const volumes = (await docker.listVolumes()).Volumes ?? [];
  for (const v of volumes)
    if (v.Name.startsWith(marker))
      await docker
        .getVolume(v.Name)
        .remove()
        .catch(() => {});
  rmSync(work, { recursive: true, force: true });
}
