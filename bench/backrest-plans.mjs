#!/usr/bin/env node
// Benchmark: a quiesced container's downtime when a real Backrest runs its plan. The snapshot
// plan (`backrest-sidecar daemon --socket`: stopped only while a btrfs snapshot is taken) against
// the seed's plan (labels backrest.pre / backrest.post = docker stop / docker start around the
// whole backup), on the same data: SIZES_GIB (default 1 and 8 GiB of incompressible data) on a
// loop-device btrfs. Downtime is read from Docker's own events (die to start); the reference, in
// the same run, is the container's own `docker stop` + `docker start`. Every backup goes into a
// fresh repository (so every run reads all the data); sizes and plans alternate; median of RUNS.
// Root, after `npm run build`; needs BACKREST_BIN, BACKREST_RESTIC_BIN and the test image
// stowage-test/busybox:1 (made by the integration tests).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { median, sh, timed } from "./lib.mjs";
import { requireBackrest, startBackrest } from "./lib-backrest.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const CLI = path.join(ROOT, "dist/cli/backrest-sidecar.js");
const RUNS = Number(process.env.RUNS ?? 5);
const SIZES = (process.env.SIZES_GIB ?? "1,8").split(",").map(Number);
const IMAGE = "stowage-test/busybox:1";
requireBackrest();
const marker = `bench-${process.pid}`;
const work = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "stowage-bench-plans-"));
const mnt = path.join(work, "mnt");
const fmt = (values) => values.map((v) => v.toFixed(2)).join(", ");

/** Docker's die-to-start window of a container since `since` (ms), in seconds. */
function downtime(container, since) {
  const events = sh("docker", [
    "events",
    "--since",
    String(since / 1000),
    "--until",
    String(Date.now() / 1000),
    "--filter",
    `container=${container}`,
    "--filter",
    "event=die",
    "--filter",
    "event=start",
    "--format",
    "{{.TimeNano}} {{.Action}}",
  ]).stdout;
  const times = events
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(" "));
  const die = times.find(([, action]) => action === "die");
  const start = times.findLast(([, action]) => action === "start");
  if (!die || !start) throw new Error(`no stop and start of ${container}: ${events}`);
  return Number(BigInt(start[0]) - BigInt(die[0])) / 1e9;
}

let device;
let backrest;
let daemon;
const containers = [];
try {
  const image = path.join(work, "disk.img");
  sh("truncate", ["-s", `${Math.max(...SIZES) * 2 + 4}G`, image]);
  device = sh("losetup", ["--find", "--show", image]).stdout.trim();
  sh("mkfs.btrfs", ["-q", "-f", device]);
  mkdirSync(mnt);
  sh("mount", [device, mnt]);
  backrest = await startBackrest(path.join(work, "backrest"));
  const socket = path.join(work, "sidecar.sock");
  const volumesRoot = path.join(work, "volumes");
  const only = (mode) => ["--only-label", `io.stowage.bench=${marker}-${mode}`];
  const sidecar = (args) =>
    sh(process.execPath, [CLI, ...args], {
      env: { ...process.env, BACKREST_SIDECAR_STATE_DIR: path.join(work, "state") },
    });
  daemon = spawn(
    process.execPath,
    [
      CLI,
      "daemon",
      "--backrest-url",
      backrest.url,
      "--socket",
      socket,
      "--volumes-root",
      volumesRoot,
      "--interval",
      "1h",
      ...only("snapshot"),
    ],
    { stdio: "ignore", env: { ...process.env, BACKREST_SIDECAR_STATE_DIR: path.join(work, "state") } },
  );
  const results = [];
  let repoCount = 0;
  const hosts = [];
  for (const size of SIZES) {
    const volume = path.join(mnt, `@data-${size}`);
    sh("btrfs", ["-q", "subvolume", "create", volume]);
    // Incompressible data in 256 MiB files, as a database or media volume would hold.
    for (let i = 0; i < size * 4; i++)
      sh("sh", ["-c", `head -c 268435456 /dev/urandom > ${volume}/part-${i}`]);
    sh("sync", []);
    const names = { snapshot: `${marker}-snap-${size}g`, seed: `${marker}-seed-${size}g` };
    const labels = {
      snapshot: ["--label", "restic-compose-backup.quiesce=true"],
      seed: ["--label", "backrest.pre=docker stop $SELF", "--label", "backrest.post=docker start $SELF"],
    };
    for (const mode of ["snapshot", "seed"]) {
      sh("docker", [
        "run",
        "-d",
        "--name",
        names[mode],
        "--network",
        "none",
        "--label",
        `io.stowage.bench=${marker}-${mode}`,
        "--label",
        "backrest.enable=true",
        ...labels[mode],
        "-v",
        `${volume}:/data`,
        IMAGE,
        "sh",
        "-c",
        'trap "exit 0" TERM; while :; do sleep 0.1; done',
      ]);
      containers.push(names[mode]);
    }
    hosts.push({
      size,
      names,
      own: [],
      snapshot: { downtime: [], total: [] },
      seed: { downtime: [], total: [] },
    });
  }
  // Sizes and plans alternate run by run, each beside its own reference (the container's own stop
  // and start, just before), so that a busy machine weighs on all of them alike.
  for (let run = 0; run < RUNS; run++) {
    for (const h of hosts) {
      h.own.push(
        await timed(() => {
          sh("docker", ["stop", "-t", "10", h.names.snapshot]);
          sh("docker", ["start", h.names.snapshot]);
        }),
      );
      for (const mode of ["snapshot", "seed"]) {
        // A fresh repository, so that every backup reads and stores all of the data.
        const repo = `r${++repoCount}`;
        await backrest.call("AddRepo", {
          repo: { id: repo, uri: path.join(work, "repos", repo), password: "bench" },
        });
        const socketFlags = mode === "snapshot" ? ["--socket", socket, "--volumes-root", volumesRoot] : [];
        sidecar([
          "reconcile",
          "--backrest-url",
          backrest.url,
          "--default-repo",
          repo,
          ...socketFlags,
          ...only(mode),
        ]);
        const planId = `backrest_sidecar_${h.names[mode].replaceAll("-", "_")}`;
        const since = Date.now() - 1000;
        const took = await timed(() => backrest.call("Backup", { value: planId }));
        h[mode].downtime.push(downtime(h.names[mode], since));
        h[mode].total.push(took);
        rmSync(path.join(work, "repos", repo), { recursive: true, force: true });
      }
    }
  }
  for (const h of hosts) {
    for (const mode of ["snapshot", "seed"]) {
      const { downtime: down, total } = h[mode];
      results.push({ size: h.size, mode, downtime: median(down), total: median(total), own: median(h.own) });
      console.log(
        `${h.size} GiB, ${mode === "snapshot" ? "snapshot plan" : "seed's stop/start hooks"}: downtime ${median(down).toFixed(2)} s (runs ${fmt(down)}), Backrest's backup ${median(total).toFixed(1)} s, the container's own stop+start ${median(h.own).toFixed(2)} s (runs ${fmt(h.own)})`,
      );
    }
  }
  const snap = results.filter((r) => r.mode === "snapshot");
  if (snap.length >= 2) {
    const [small, big] = [snap[0], snap.at(-1)];
    console.log(
      `snapshot-plan downtime, ${big.size} GiB / ${small.size} GiB: ${(big.downtime / small.downtime).toFixed(2)}x (target within 1.2x); ` +
        `over the container's own stop+start: ${(big.downtime - big.own).toFixed(2)} s (target < 2 s); ` +
        `the backup took ${(big.total / big.downtime).toFixed(0)}x its downtime`,
    );
  }
} finally {
  for (const name of containers) sh("docker", ["rm", "-f", name], { allowFail: true });
  for (const size of SIZES)
    sh("btrfs", ["-q", "subvolume", "delete", path.join(mnt, `@data-${size}`)], { allowFail: true });
  if (daemon) daemon.kill("SIGTERM");
  backrest?.stop();
  await new Promise((r) => setTimeout(r, 1000));
  sh("umount", ["-R", path.join(work, "volumes")], { allowFail: true });
  sh("umount", [mnt], { allowFail: true });
  if (device) sh("losetup", ["-d", device], { allowFail: true });
  rmSync(work, { recursive: true, force: true });
}
