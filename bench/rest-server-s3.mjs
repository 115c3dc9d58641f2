#!/usr/bin/env node
// Benchmark: rest-server on S3 storage (the Ceph RGW of scripts/setup-ceph.sh) against restic's own
// `s3:` backend onto the same RGW, same run, alternating, a fresh repository each round: restic
// backup and restore of the 214 MiB set (bench/lib.mjs), medians and paired ratios, by a server
// that sends the packs itself and by one with --s3-redirect-reads (the client reads them from RGW). Then 8
// concurrent clients through one server (each backs up and checks clean; the server's peak RSS), and
// the throughput of 6 concurrent clients through 1 and through 3 instances on one bucket.
// Usage: npm run build && node bench/rest-server-s3.mjs   (ROUNDS=3, SCALE=1)
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { DeleteBucketCommand, DeleteObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { exec, MiB, makeDataset, median, peakRss, startRestServer, stop, timed } from "./lib.mjs";

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SCALE = Number(process.env.SCALE ?? 1);
const ENV_FILE = `${process.env.STOWAGE_CEPH_DIR ?? "/var/lib/stowage-ceph"}/s3.env`;

function cephEnv() {
  const env = Object.fromEntries(
    readFileSync(ENV_FILE, "utf8")
      .split("\n")
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
  const { S3_ENDPOINT: endpoint, ...credentials } = env;
  return { endpoint, credentials };
}

async function emptyBucket(client, bucket) {
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket })).catch(() => undefined);
    const keys = (page?.Contents ?? []).map((object) => object.Key);
    if (keys.length === 0) break;
    for (let i = 0; i < keys.length; i += 16) {
      await Promise.all(
        keys.slice(i, i + 16).map((Key) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key }))),
      );
    }
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
}

const { endpoint, credentials } = cephEnv();
const bucket = `stowage-bench-${randomBytes(4).toString("hex")}`;
const client = new S3Client({
  endpoint,
  forcePathStyle: true,
  region: credentials.AWS_REGION,
  credentials: {
    accessKeyId: credentials.AWS_ACCESS_KEY_ID,
    secretAccessKey: credentials.AWS_SECRET_ACCESS_KEY,
  },
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED",
});
const work = await mkdtemp(path.join(os.tmpdir(), "stowage-bench-s3-"));
const servers = [];
const ourServer = async (instances, extra = []) => {
  const server = await startRestServer(
    [
      "--storage",
      `s3://${bucket}/via`,
      "--s3-endpoint",
      endpoint,
      "--no-auth",
      "--instances",
      String(instances),
      ...extra,
    ],
    { env: credentials },
  );
  servers.push(server);
  return server;
};
const resticEnv = (repo, name) => ({
  ...credentials,
  RESTIC_REPOSITORY: repo,
  RESTIC_PASSWORD: "bench",
  RESTIC_CACHE_DIR: path.join(work, `cache-${name}`),
});

try {
  const data = path.join(work, "data");
  const bytes = await makeDataset(data, SCALE);
  console.log(`dataset: ${(bytes / MiB).toFixed(0)} MiB; RGW at ${endpoint}, bucket ${bucket}`);
  const server = await ourServer(1);
  const redirecting = await ourServer(1, ["--s3-redirect-reads"]);
  const kinds = {
    "restic s3:": (name) => `s3:${endpoint}/${bucket}/direct/${name}`,
    "rest-server on s3": (name) => `rest:${server.url}/${name}/`,
    "  --s3-redirect-reads": (name) => `rest:${redirecting.url}/redirected-${name}/`,
  };
  const results = Object.fromEntries(Object.keys(kinds).map((kind) => [kind, { backup: [], restore: [] }]));
  const order = Object.keys(kinds);
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of round % 2 === 0 ? order : [...order].reverse()) {
      const name = `r${round}`;
      const e = resticEnv(kinds[kind](name), `${kind.replace(/\W+/g, "-")}-${round}`);
      await exec("restic", ["init"], e);
      // Dirty pages of the previous run (the OSD's writes among them) reach the disk first.
      await exec("sync", []);
      const backup = await timed(() => exec("restic", ["backup", "--host", "bench", data], e));
      const target = path.join(work, "restore");
      await exec("sync", []);
      const restore = await timed(() => exec("restic", ["restore", "latest", "--target", target], e));
      await rm(target, { recursive: true, force: true });
      results[kind].backup.push(backup);
      results[kind].restore.push(restore);
      console.log(
        `round ${round + 1} ${kind.padEnd(18)} backup ${backup.toFixed(2)} s  restore ${restore.toFixed(2)} s`,
      );
    }
  }
  for (const what of ["backup", "restore"]) {
    const direct = results["restic s3:"][what];
    for (const kind of ["rest-server on s3", "  --s3-redirect-reads"]) {
      const ours = results[kind][what];
      const paired = median(ours.map((value, round) => value / direct[round]));
      console.log(
        `${what}: restic s3: ${median(direct).toFixed(2)} s, through rest-server${kind === "rest-server on s3" ? "" : kind} ${median(ours).toFixed(2)} s, ratio ${(median(ours) / median(direct)).toFixed(3)}, paired ${paired.toFixed(3)} (target <= 1.10)`,
      );
    }
  }
  console.log(
    `peak server RSS, one client at a time: ${((await peakRss(server.process.pid)) / MiB).toFixed(1)} MiB`,
  );

  // 8 concurrent clients through the one server.
  const small = path.join(data, "size-2097152");
  const eight = await timed(() =>
    Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const e = resticEnv(`rest:${server.url}/c8/c${i}/`, `c8-${i}`);
        await exec("restic", ["init"], e);
        await exec("restic", ["backup", small], e);
        await exec("restic", ["check", "--read-data"], e);
      }),
    ),
  );
  console.log(
    `8 concurrent clients: backed up and checked clean in ${eight.toFixed(2)} s; peak server RSS ${((await peakRss(server.process.pid)) / MiB).toFixed(1)} MiB (target <= 150 MB)`,
  );

  // Throughput of 6 clients through 1 and through 3 instances (clients spread round-robin).
  const set = [path.join(data, `size-${16 * MiB}`), path.join(data, `size-${2 * MiB}`)];
  const setBytes = (2 * 16 + 16 * 2) * MiB * Math.max(1, SCALE);
  const three = [server, await ourServer(3), await ourServer(3)];
  for (const count of [1, 3, 1, 3]) {
    const seconds = await timed(() =>
      Promise.all(
        Array.from({ length: 6 }, async (_, i) => {
          const via = three[i % count];
          const e = resticEnv(`rest:${via.url}/t${count}-${i}-${randomBytes(2).toString("hex")}/`, `t-${i}`);
          await exec("restic", ["init"], e);
          await exec("restic", ["backup", "--host", "bench", ...set], e);
          await rm(e.RESTIC_CACHE_DIR, { recursive: true, force: true });
        }),
      ),
    );
    console.log(
      `6 clients through ${count} instance(s): ${seconds.toFixed(2)} s, ${((6 * setBytes) / MiB / seconds).toFixed(0)} MiB/s`,
    );
  }
} finally {
  for (const server of servers) await stop(server).catch(() => {});
  await emptyBucket(client, bucket);
  await rm(work, { recursive: true, force: true });
}
