#!/usr/bin/env node
// Benchmark: a quiesced container's downtime in `backrest-sidecar backup-once`, snapshot mode
// (stopped only while a btrfs snapshot is taken) against stop mode (`--snapshot off`: stopped for
// the whole backup), for volumes of SIZES_GIB (default 1 and 8 GiB of incompressible data) on a
// loop-device btrfs. The reference, in the same run: the container's own `docker stop` + `docker
// start` time. Each backup goes into a fresh local restic repository (so every run reads all the
// data), median of RUNS. Root, after `npm run build`; needs the test image stowage-test/busybox:1.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { median, sh } from "./lib.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const CLI = path.join(ROOT, "dist/cli/backrest-sidecar.js");
const RUNS = Number(process.env.RUNS ?? 3);
const SIZES = (process.env.SIZES_GIB ?? "1,8").split(",").map(Number);
const IMAGE = "stowage-test/busybox:1";
const marker = `bench-${process.pid}`;
const work = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "stowage-bench-hostbackup-"));
const mnt = path.join(work, "mnt");
const state = path.join(work, "state");

const seconds = (work) => {
  const t = process.hrtime.bigint();
  work();
  return Number(process.hrtime.bigint() - t) / 1e9;
};

let device;
const containers = [];
try {
  const image = path.join(work, "disk.img");
  sh("truncate", ["-s", `${Math.max(...SIZES) * 2 + 4}G`, image]);
  device = sh("losetup", ["--find", "--show", image]).stdout.trim();
  sh("mkfs.btrfs", ["-q", "-f", device]);
  mkdirSync(mnt);
  sh("mount", [device, mnt]);
  const results = [];
  for (const size of SIZES) {
    const volume = path.join(mnt, `@data-${size}`);
    sh("btrfs", ["-q", "subvolume", "create", volume]);
    // Incompressible data in 256 MiB files, as a database or media volume would hold.
    for (let i = 0; i < size * 4; i++)
      sh("sh", ["-c", `head -c 268435456 /dev/urandom > ${volume}/part-${i}`]);
    sh("sync", []);
    const name = `${marker}-${size}g`;
    sh("docker", [
      "run",
      "-d",
      "--name",
      name,
      "--network",
      "none",
      "--label",
      `io.stowage.bench=${marker}-${size}`,
      "--label",
      "restic-compose-backup.volumes=true",
      "--label",
      "restic-compose-backup.quiesce=true",
      "-v",
      `${volume}:/data`,
      IMAGE,
      "sh",
      "-c",
      'trap "exit 0" TERM; while :; do sleep 0.1; done',
    ]);
    containers.push(name);
    // The reference: what the container itself takes to stop and start.
    const own = [];
    for (let run = 0; run < RUNS; run++)
      own.push(
        seconds(() => {
          sh("docker", ["stop", "-t", "10", name]);
          sh("docker", ["start", name]);
        }),
      );
    // Modes alternate run by run, so the page cache favours neither.
    const modes = { auto: { downtime: [], total: [] }, off: { downtime: [], total: [] } };
    for (let run = 0; run < RUNS; run++) {
      for (const mode of Object.keys(modes)) {
        const repo = path.join(work, "repo");
        const env = {
          ...process.env,
          RESTIC_REPOSITORY: repo,
          RESTIC_PASSWORD: "bench",
          RESTIC_CACHE_DIR: path.join(work, "cache"),
        };
        sh("restic", ["init", "-q"], { env });
        const report = path.join(work, "report.json");
        const took = seconds(() =>
          sh(
            process.execPath,
            [
              CLI,
              "backup-once",
              "--only-label",
              `io.stowage.bench=${marker}-${size}`,
              "--snapshot",
              mode,
              "--no-forget",
              "--stop-timeout",
              "10",
              "--volumes-root",
              path.join(work, "volumes"),
              "--state-dir",
              state,
              "--report",
              report,
            ],
            { env },
          ),
        );
        const json = JSON.parse(readFileSync(report, "utf8"));
        if (json.status !== 0) throw new Error(`backup-once status ${json.status}`);
        modes[mode].downtime.push(json.workloads[0].downtimeSeconds);
        modes[mode].total.push(took);
        rmSync(repo, { recursive: true, force: true });
      }
    }
    for (const [mode, { downtime, total }] of Object.entries(modes)) {
      const label = mode === "auto" ? "snapshot" : "stop";
      results.push({ size, mode: label, downtime: median(downtime), total: median(total), own: median(own) });
      console.log(
        `${size} GiB, ${label} mode: downtime ${median(downtime).toFixed(2)} s (runs ${downtime.map((d) => d.toFixed(2)).join(", ")}), whole backup ${median(total).toFixed(1)} s, the container's own stop+start ${median(own).toFixed(2)} s`,
      );
    }
    sh("docker", ["rm", "-f", name]);
    containers.pop();
    sh("btrfs", ["-q", "subvolume", "delete", volume]);
  }
  const snap = results.filter((r) => r.mode === "snapshot");
  if (snap.length >= 2) {
    const [small, big] = [snap[0], snap.at(-1)];
    const growth = big.downtime / small.downtime;
    console.log(
      `snapshot-mode downtime, ${big.size} GiB / ${small.size} GiB: ${growth.toFixed(2)}x (target within 1.2x); ` +
        `over the container's own stop+start: ${(big.downtime - big.own).toFixed(2)} s (target < 2 s)`,
    );
  }
} finally {
  for (const name of containers) sh("docker", ["rm", "-f", name], { allowFail: true });
  sh("umount", [mnt], { allowFail: true });
  if (device) sh("losetup", ["-d", device], { allowFail: true });
  rmSync(work, { recursive: true, force: true });
}
