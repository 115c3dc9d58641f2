#!/usr/bin/env node
// Benchmark: a backup through rest-server with --mirror on, against the same server without it,
// same run, alternating, a fresh repository each round: restic backs up the 214 MiB set
// (bench/lib.mjs) into a directory primary; the mirror is an S3 bucket on the Ceph RGW of
// scripts/setup-ceph.sh (an off-site copy), or a directory with MIRROR=fs. Reports the backup's
// ratio (median and paired, target <= 1.05) and how long the mirror took to be complete after the
// backup ended, as a multiple of the backup's own duration (target <= 2). The queue is empty
// before every backup starts, so no round copies the previous one's objects.
// Usage: npm run build && node bench/rest-server-mirror.mjs   (ROUNDS=5, MIRROR=s3|fs, CONCURRENCY=2)
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { cephS3, emptyBucket } from "./ceph.mjs";
import { exec, MiB, makeDataset, median, NODE, REST_SERVER, startRestServer, stop, timed } from "./lib.mjs";

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const MIRROR = process.env.MIRROR ?? "s3";
const CONCURRENCY = process.env.CONCURRENCY ?? "2";

async function queueObjects(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^rest_server_mirror_queue_objects (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
}

/** Seconds until the mirror queue is empty (polled every 20 ms). */
async function untilMirrored(url) {
  return timed(async () => {
    while ((await queueObjects(url)) !== 0) await new Promise((resolve) => setTimeout(resolve, 20));
  });
}

const load = () => os.loadavg()[0].toFixed(2);
const { endpoint, credentials, client } = cephS3();
const bucket = `stowage-bench-mirror-${randomBytes(4).toString("hex")}`;
const work = await mkdtemp(path.join(os.tmpdir(), "stowage-bench-mirror-"));
const servers = [];
try {
  const data = path.join(work, "data");
  const bytes = await makeDataset(data, 1);
  const mirrorFlags =
    MIRROR === "fs"
      ? ["--mirror", path.join(work, "mirror")]
      : ["--mirror", `s3://${bucket}/m`, "--mirror-s3-endpoint", endpoint];
  const plain = await startRestServer(["--path", path.join(work, "plain"), "--no-auth"]);
  const mirrored = await startRestServer(
    [
      "--path",
      path.join(work, "primary"),
      "--no-auth",
      "--prometheus",
      "--prometheus-no-auth",
      "--mirror-concurrency",
      CONCURRENCY,
      ...mirrorFlags,
    ],
    { env: credentials },
  );
  servers.push(plain, mirrored);
  console.log(
    `dataset: ${(bytes / MiB).toFixed(0)} MiB; mirror: ${MIRROR === "fs" ? "a directory" : `s3 on RGW ${endpoint}`}; copies at a time: ${CONCURRENCY}; load ${load()}`,
  );
  const kinds = { "without mirror": plain, "with mirror": mirrored };
  const results = { "without mirror": [], "with mirror": [] };
  const catchUp = [];
  const order = Object.keys(kinds);
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of round % 2 === 0 ? order : [...order].reverse()) {
      const e = {
        RESTIC_REPOSITORY: `rest:${kinds[kind].url}/r${round}/`,
        RESTIC_PASSWORD: "bench",
        RESTIC_CACHE_DIR: path.join(work, `cache-${kind.replace(/\W+/g, "-")}-${round}`),
      };
      await exec("restic", ["init"], e);
      if (kind === "with mirror") await untilMirrored(mirrored.url);
      await exec("sync", []);
      const backup = await timed(() => exec("restic", ["backup", "--host", "bench", data], e));
      results[kind].push(backup);
      let line = `round ${round + 1} ${kind.padEnd(15)} backup ${backup.toFixed(2)} s`;
      if (kind === "with mirror") {
        const after = await untilMirrored(mirrored.url);
        catchUp.push(after / backup);
        line += `, mirror complete ${after.toFixed(2)} s later (${(after / backup).toFixed(2)}x the backup)`;
      }
      console.log(`${line}; load ${load()}`);
    }
  }
  const without = results["without mirror"];
  const withMirror = results["with mirror"];
  const paired = median(withMirror.map((value, round) => value / without[round]));
  console.log(
    `backup: without mirror ${median(without).toFixed(2)} s, with mirror ${median(withMirror).toFixed(2)} s, ratio ${(median(withMirror) / median(without)).toFixed(3)}, paired ${paired.toFixed(3)} (target <= 1.05)`,
  );
  console.log(
    `mirror complete after the backup: median ${median(catchUp).toFixed(2)}x the backup's duration, worst ${Math.max(...catchUp).toFixed(2)}x (target <= 2); load ${load()}`,
  );
  await exec(
    NODE,
    [REST_SERVER, "mirror-verify", "--path", path.join(work, "primary"), ...mirrorFlags],
    credentials,
  );
  console.log("mirror-verify: clean");
} finally {
  for (const server of servers) await stop(server).catch(() => {});
  await emptyBucket(client, bucket);
  await rm(work, { recursive: true, force: true });
}
