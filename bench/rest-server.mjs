#!/usr/bin/env node
// Benchmark: restic backup/restore into restic's local backend vs. our rest-server over loopback.
// Same run, alternating, fresh repository each time, `sync` before each backup; also our server with
// --no-verify-upload (the cost of hashing) and two reference sinks (reference-sink.mjs): the floor
// (packs read and dropped) and a naive server that only writes and fsyncs.
// Prints medians, ratios and peak server RSS,
// then runs 8 concurrent restic clients into 8 repositories and checks them all. Each kind that keeps
// the packs is restored and checked (`check --read-data`) too. With GO_REST_SERVER=path the Go
// original (built by ../shared/tools/build-anchors.sh) runs beside ours as one more kind, and the
// restore and check figures are also given as ours / Go, paired by round.
// Usage: npm run bench:rest-server -- [--rounds N] [--scale F]   (runs the server on the pinned Node)
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { exec, freePort, MiB, makeDataset, median, peakRss, startRestServer, stop, timed } from "./lib.mjs";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const ROUNDS = option("--rounds", 5);
const SCALE = option("--scale", 1);
const SINK = path.resolve(import.meta.dirname, "reference-sink.mjs");

/** A server script (ours or the reference sink) on a free loopback port ("PORT" in its arguments). */
async function startServer(script, argv) {
  const port = await freePort();
  const child = spawn(process.execPath, [script, ...argv.map((arg) => arg.replace("PORT", String(port)))], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, STOWAGE_LOG_LEVEL: "warn" },
  });
  await new Promise((resolve) => child.stdout.once("data", resolve));
  return { process: child, port };
}

async function main() {
  const work = await mkdtemp(path.join(os.tmpdir(), "stowage-bench-"));
  try {
    const data = path.join(work, "data");
    const bytes = await makeDataset(data, SCALE);
    console.log(`dataset: ${(bytes / MiB).toFixed(0)} MiB in ${data}`);
    const serverRoot = path.join(work, "rest");
    // Our server as restic users run it; the same without SHA-256 verification (the difference is
    // what hashing costs here); the floor of restic over loopback (a sink that reads and drops every
    // pack); and a naive Node server that only writes and fsyncs packs (no checks, no hash).
    const server = await startRestServer(["--path", serverRoot, "--no-auth"]);
    const unverified = await startRestServer([
      "--path",
      path.join(work, "rest-no-verify"),
      "--no-auth",
      "--no-verify-upload",
    ]);
    const discard = await startServer(SINK, ["discard", "PORT", path.join(work, "sink-discard")]);
    const store = await startServer(SINK, ["store", "PORT", path.join(work, "sink-store")]);
    const GO = process.env.GO_REST_SERVER;
    const go = GO
      ? await startRestServer(["--path", path.join(work, "go"), "--no-auth"], { binary: GO })
      : undefined;
    const env = (repo, name) => ({
      RESTIC_REPOSITORY: repo,
      RESTIC_PASSWORD: "bench",
      RESTIC_CACHE_DIR: path.join(work, `cache-${name}`),
    });
    const viaRest = (running, dir, restore = true) => ({
      repo: (name) => `rest:http://127.0.0.1:${running.port}/${name}/`,
      dir: (name) => path.join(dir, name),
      restore,
    });
    const kinds = {
      local: {
        repo: (name) => path.join(work, "local", name),
        dir: (name) => path.join(work, "local", name),
        restore: true,
      },
      rest: viaRest(server, serverRoot),
      "rest --no-verify-upload": viaRest(unverified, path.join(work, "rest-no-verify")),
      "floor: discard packs": viaRest(discard, path.join(work, "sink-discard"), false),
      "naive: write + fsync only": viaRest(store, path.join(work, "sink-store"), false),
      ...(go ? { "Go rest-server": viaRest(go, path.join(work, "go")) } : {}),
    };
    const results = Object.fromEntries(
      Object.keys(kinds).map((kind) => [kind, { backup: [], restore: [], check: [] }]),
    );
    const order = Object.keys(kinds);
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate the order so that no kind always runs right after the same other one.
      for (const kind of round % 2 === 0 ? order : [...order].reverse()) {
        const name = `${kind.replace(/\W+/g, "-")}-${round}`;
        const e = env(kinds[kind].repo(name), name);
        await exec("restic", ["init"], e);
        // Let the previous run's dirty pages reach the disk first, so that no run pays for another.
        await exec("sync", []);
        const backup = await timed(() => exec("restic", ["backup", "--host", "bench", data], e));
        results[kind].backup.push(backup);
        let restored = "";
        if (kinds[kind].restore) {
          const target = path.join(work, `restore-${name}`);
          const restore = await timed(() => exec("restic", ["restore", "latest", "--target", target], e));
          await rm(target, { recursive: true, force: true });
          results[kind].restore.push(restore);
          const check = await timed(() => exec("restic", ["check", "--read-data"], e));
          results[kind].check.push(check);
          restored = `  restore ${restore.toFixed(2)} s  check --read-data ${check.toFixed(2)} s`;
        }
        await rm(kinds[kind].dir(name), { recursive: true, force: true });
        await rm(e.RESTIC_CACHE_DIR, { recursive: true, force: true });
        console.log(`round ${round + 1} ${kind.padEnd(26)} backup ${backup.toFixed(2)} s${restored}`);
      }
    }
    // The ratio of the medians, and the median of each round's ratio to the local run beside it
    // (steadier when the machine drifts during the run).
    for (const what of ["backup", "restore", "check"]) {
      const local = results.local[what];
      const lines = order
        .slice(1)
        .filter((kind) => results[kind][what].length > 0)
        .map((kind) => {
          const values = results[kind][what];
          const paired = median(values.map((value, round) => value / local[round]));
          return `\n  ${kind.padEnd(26)} ${median(values).toFixed(2)} s  ratio ${(median(values) / median(local)).toFixed(3)}  paired ${paired.toFixed(3)}`;
        });
      const target = what === "backup" ? "   (target: rest <= 1.03)" : "";
      console.log(`${what} medians: local ${median(local).toFixed(2)} s${target}${lines.join("")}`);
      if (go) {
        const ours = results.rest[what];
        const theirs = results["Go rest-server"][what];
        const paired = median(ours.map((value, round) => value / theirs[round]));
        const goal = what === "backup" ? "" : "   (target: <= 1.00)";
        console.log(
          `  ours / Go: ratio ${(median(ours) / median(theirs)).toFixed(3)}  paired ${paired.toFixed(3)}${goal}`,
        );
      }
    }
    for (const extra of [unverified, discard, store, ...(go ? [go] : [])]) await stop(extra);

    const peakSingle = await peakRss(server.process.pid);
    console.log(`peak server RSS, one client at a time: ${(peakSingle / MiB).toFixed(1)} MiB`);

    // 8 concurrent clients into 8 repositories; all must succeed and check clean.
    const small = path.join(data, "size-2097152");
    const clients = Array.from({ length: 8 }, (_, i) =>
      env(`rest:http://127.0.0.1:${server.port}/concurrent/c${i}/`, `c${i}`),
    );
    const concurrent = await timed(() =>
      Promise.all(
        clients.map(async (e) => {
          await exec("restic", ["init"], e);
          await exec("restic", ["backup", small], e);
          await exec("restic", ["check", "--read-data"], e);
        }),
      ),
    );
    console.log(`8 concurrent clients: all backed up and checked clean in ${concurrent.toFixed(2)} s`);
    console.log(
      `peak server RSS overall (incl. 8 concurrent clients): ${((await peakRss(server.process.pid)) / MiB).toFixed(1)} MiB (target <= 120 MiB)`,
    );
    await stop(server);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
