#!/usr/bin/env node
// A deliberately minimal restic REST backend, used only by the benchmark as a reference: `discard`
// is the floor (restic over loopback with no server-side work), `store` a naive server that only
// writes. Not a server to use: no checks, no auth, no limits.
//   discard  data packs are read and dropped; everything else is kept in memory
//   store    data packs are written to files under ROOT/<repository> and fsynced; no hashing
// Usage: node bench/reference-sink.mjs discard|store PORT ROOT   (prints "ready" when listening)
import { close, fsync, mkdirSync, openSync, writev } from "node:fs";
import http from "node:http";
import path from "node:path";

const [mode, port, root] = process.argv.slice(2);
if (!["discard", "store"].includes(mode ?? "") || !port || !root) {
  console.error("usage: reference-sink.mjs discard|store PORT ROOT");
  process.exit(2);
}
const small = new Map();
let files = 0;
mkdirSync(root, { recursive: true });

/** Packs go under ROOT/<repository>/, so the benchmark can remove each round's packs with its repository. */
function storePack(repo, req, res) {
  const dir = path.join(root, repo);
  mkdirSync(dir, { recursive: true });
  const fd = openSync(path.join(dir, `pack-${files++}`), "w");
  let queue = [];
  let writing = false;
  let ended = false;
  const flush = () => {
    if (queue.length === 0) {
      writing = false;
      if (ended) fsync(fd, () => close(fd, () => res.end()));
      return;
    }
    writing = true;
    const batch = queue;
    queue = [];
    writev(fd, batch, flush);
  };
  req.on("data", (chunk) => {
    queue.push(chunk);
    if (!writing) flush();
  });
  req.on("end", () => {
    ended = true;
    if (!writing) flush();
  });
}

http
  .createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const segments = url.pathname.split("/").filter(Boolean);
    const key = `/${segments.join("/")}`;
    if (req.method === "POST" && url.searchParams.get("create") === "true") return res.end();
    if (req.method === "POST" && segments.at(-2) === "data") {
      if (mode === "store") return storePack(segments[0] ?? "", req, res);
      return req.on("data", () => {}).on("end", () => res.end());
    }
    if (req.method === "POST") {
      const chunks = [];
      req.on("data", (chunk) => chunks.push(chunk));
      return req.on("end", () => {
        small.set(key, Buffer.concat(chunks));
        res.end();
      });
    }
    if (req.method === "DELETE") {
      small.delete(key);
      return res.end();
    }
    const type = segments.at(-1);
    if (req.method === "GET" && ["keys", "locks", "snapshots", "index", "data"].includes(type ?? "")) {
      const prefix = `${key}/`;
      const v2 = req.headers.accept === "application/vnd.x.restic.rest.v2";
      const entries = [...small].filter(([name]) => name.startsWith(prefix));
      res.setHeader("Content-Type", `application/vnd.x.restic.rest.v${v2 ? 2 : 1}`);
      const list = entries.map(([name, body]) => ({ name: name.slice(prefix.length), size: body.length }));
      return res.end(JSON.stringify(v2 ? list : list.map((entry) => entry.name)));
    }
    const body = small.get(key);
    if (!body) {
      res.statusCode = 404;
      return res.end();
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    const start = range ? Number(range[1]) : 0;
    const end = range?.[2] ? Number(range[2]) + 1 : body.length;
    res.statusCode = range ? 206 : 200;
    res.setHeader("Content-Length", end - start);
    res.end(req.method === "HEAD" ? undefined : body.subarray(start, end));
  })
  .listen(Number(port), "127.0.0.1", () => console.log("ready"));
