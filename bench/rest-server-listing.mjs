#!/usr/bin/env node
// Benchmark: `GET /<repo>/data/` (API v2) on repositories of COUNTS blobs, our rest-server against
// the Go original (GO_REST_SERVER=path, optional) in the same run: wall time of the whole listing as
// a client reads it, and the server's peak RSS (VmHWM; a fresh server for each listing, so the peak
// is the listing's). Medians of RUNS. The blobs are empty files named as restic names packs (64 hex
// in data/<2 hex>/), made with plain file system calls; the page cache is warm, as on a busy server.
// Usage: npm run build && node bench/rest-server-listing.mjs   (COUNTS=200000,1000000 RUNS=3)
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { MiB, median, peakRss, startRestServer, stop } from "./lib.mjs";

const COUNTS = (process.env.COUNTS ?? "200000,1000000").split(",").map(Number);
const RUNS = Number(process.env.RUNS ?? 3);
const GO = process.env.GO_REST_SERVER;

/** Grow the repository to `count` blobs (names from a counter's SHA-256, spread as restic's are). */
function fill(root, from, count) {
  const data = path.join(root, "r", "data");
  for (let i = 0; i < 256; i++)
    mkdirSync(path.join(data, i.toString(16).padStart(2, "0")), { recursive: true });
  for (const dir of ["keys", "locks", "snapshots", "index"])
    mkdirSync(path.join(root, "r", dir), { recursive: true });
  closeSync(openSync(path.join(root, "r", "config"), "a"));
  for (let i = from; i < count; i++) {
    const name = createHash("sha256").update(String(i)).digest("hex");
    closeSync(openSync(path.join(data, name.slice(0, 2), name), "w"));
  }
}

function list(port) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const req = http.get(
      { host: "127.0.0.1", port, path: "/r/data/", headers: { Accept: "application/vnd.x.restic.rest.v2" } },
      (res) => {
        let bytes = 0;
        let tail = "";
        res.on("data", (chunk) => {
          bytes += chunk.length;
          tail = (tail + chunk.toString("latin1")).slice(-200);
        });
        res.on("end", () => {
          if (res.statusCode !== 200 || !tail.endsWith("]"))
            reject(new Error(`listing failed: ${res.statusCode}`));
          else resolve({ seconds: Number(process.hrtime.bigint() - start) / 1e9, bytes });
        });
      },
    );
    req.on("error", reject);
  });
}

async function measure(kind, root) {
  const server = await startRestServer(["--path", root, "--no-auth"], kind === "go" ? { binary: GO } : {});
  const { seconds, bytes } = await list(server.port);
  const rss = await peakRss(server.process.pid);
  await stop(server);
  return { seconds, rss, bytes };
}

const work = await mkdtemp(path.join(os.tmpdir(), "stowage-bench-list-"));
try {
  const kinds = GO ? ["ours", "go"] : ["ours"];
  let made = 0;
  for (const count of COUNTS) {
    const t = process.hrtime.bigint();
    fill(work, made, count);
    made = count;
    console.log(`${count} blobs ready (${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(1)} s)`);
    await measure("ours", work); // once to warm the dentry and inode caches for both
    const results = Object.fromEntries(kinds.map((kind) => [kind, []]));
    for (let run = 0; run < RUNS; run++) {
      for (const kind of run % 2 === 0 ? kinds : [...kinds].reverse())
        results[kind].push(await measure(kind, work));
    }
    const line = (kind) => {
      const r = results[kind];
      return `${kind} ${median(r.map((x) => x.seconds)).toFixed(2)} s, peak RSS ${(median(r.map((x) => x.rss)) / MiB).toFixed(0)} MiB, ${(r[0].bytes / MiB).toFixed(1)} MiB of JSON`;
    };
    const ratio = GO
      ? `  ratio ${(median(results.ours.map((x) => x.seconds)) / median(results.go.map((x) => x.seconds))).toFixed(2)}`
      : "";
    console.log(`${count} blobs: ${kinds.map(line).join("; ")}${ratio}`);
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
