#!/usr/bin/env node
// Benchmark: rest-server on S3 storage (the Ceph RGW of scripts/setup-ceph.sh) against restic's own
// `s3:` backend onto the same RGW, same run, alternating, a fresh repository each round: restic
// backup and restore of the 214 MiB set (bench/lib.mjs), medians and paired ratios, by a server
// that sends the packs itself and by one with --s3-redirect-reads (the client reads them from RGW). Then 8
// concurrent clients through one server (each backs up and checks clean; the server's peak RSS), and
// the throughput of 6 concurrent clients through 1 and through 3 instances on one bucket.
// Usage: npm run build && node bench/rest-server-s3.mjs   (ROUNDS=3, SCALE=1)
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { cephS3, emptyBucket } from "./ceph.mjs";
import { exec, MiB, makeDataset, median, peakRss, startRestServer, stop, timed } from "./lib.mjs";

const ROUNDS = Number(process.env.ROUNDS ?? 3);

/** User + system CPU seconds a process has used (/proc/PID/stat, clock ticks of 1/100 s). */
async function cpuSeconds(pid) {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
const SCALE = Number(process.env.SCALE ?? 1);

const { endpoint, credentials, client } = cephS3();
const bucket = `stowage-bench-${randomBytes(4).toString("hex")}`;
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
  const serverOf = { "rest-server on s3": server, "  --s3-redirect-reads": redirecting };
  const restoreCpu = { "rest-server on s3": [] };
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
      const before = serverOf[kind] ? await cpuSeconds(serverOf[kind].process.pid) : 0;
      const restore = await timed(() => exec("restic", ["restore", "latest", "--target", target], e));
      if (restoreCpu[kind]) restoreCpu[kind].push((await cpuSeconds(serverOf[kind].process.pid)) - before);
      await rm(target, { recursive: true, force: true });
      results[kind].backup.push(backup);
      results[kind].restore.push(restore);
      console.log(
        `round ${round + 1} ${kind.padEnd(22)} backup ${backup.toFixed(2)} s  restore ${restore.toFixed(2)} s${restoreCpu[kind] ? `  server CPU ${restoreCpu[kind].at(-1).toFixed(2)} s` : ""}; load ${os.loadavg()[0].toFixed(2)}`,
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
    `server CPU per restore (through rest-server): median ${median(restoreCpu["rest-server on s3"]).toFixed(2)} s; load ${os.loadavg()[0].toFixed(2)}`,
  );
  // ONLY_ROUNDS=1: the alternating rounds alone.
  const concurrency = async () => {
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
            const e = resticEnv(
              `rest:${via.url}/t${count}-${i}-${randomBytes(2).toString("hex")}/`,
              `t-${i}`,
            );
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
  };
  if (!process.env.ONLY_ROUNDS) await concurrency();
} finally {
  for (const server of servers) await stop(server).catch(() => {});
  await emptyBucket(client, bucket);
  await rm(work, { recursive: true, force: true });
}
