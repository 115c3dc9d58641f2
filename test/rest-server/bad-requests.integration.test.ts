import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { htpasswdFile } from "../support/htpasswd.js";
import { resticClient } from "../support/restic.js";
import { cephS3, listKeys, s3Client, testBucket } from "../support/s3.js";
import { freePort, useScope } from "../support/scope.js";
import { spawnServer } from "./process.js";

/**
 * Thousands of generated bad requests, sent as raw bytes (so nothing in an HTTP client tidies them
 * up) to the real server process: never a 5xx, never an error logged, the server stays up, nothing
 * appears outside --path, and a repository backed up before the storm still checks clean.
 */

const SEED = Number(process.env.STOWAGE_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const RUNS_PER_FAMILY = Number(process.env.STOWAGE_FUZZ_RUNS ?? 200);
const ALICE = ["alice", "alice-pw"] as const;
const TYPES = ["data", "index", "keys", "locks", "snapshots"];

interface RawRequest {
  method: string;
  target: string;
  headers: Array<[string, string]>;
  body: Buffer;
  /** Bytes of the body actually sent. */
  sent: number;
  /** Fewer bytes sent than declared: the client hangs up after them. */
  truncated: boolean;
}

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
/** Path segments a fuzzer would try: traversal, encodings, odd and overlong names. */
const oddSegment = fc.oneof(
  fc.constantFrom("..", ".", "%2e%2e", "%2E%2E%2F", "..%2f..", "%2f", "%00", "%zz", "%", "", ".htpasswd"),
  fc.constantFrom("config", "data", "keys", "locks", "snapshots", "index", "metrics", "alice", "bob"),
  fc.string({ minLength: 1, maxLength: 12 }).map(encodeURIComponent),
  fc.integer({ min: 200, max: 700 }).map((length) => "a".repeat(length)),
  fc.integer({ min: 60, max: 200 }).map((length) => encodeURIComponent("é".repeat(length))),
  hex64,
  hex64.map((id) => id.toUpperCase()),
  hex64.map((id) => id.slice(0, 63)),
);
const repoPrefix = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom("", "/alice", "/alice/laptop", "/base") },
  { weight: 3, arbitrary: oddSegment.map((segment) => `/${segment}`) },
  { weight: 2, arbitrary: fc.tuple(oddSegment, oddSegment).map((segments) => `/${segments.join("/")}`) },
  {
    weight: 1,
    arbitrary: fc
      .array(oddSegment, { minLength: 3, maxLength: 5 })
      .map((segments) => `/${segments.join("/")}`),
  },
);
const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("GET", "HEAD", "POST", "DELETE") },
  { weight: 1, arbitrary: fc.constantFrom("PUT", "PATCH", "OPTIONS", "TRACE", "CONNECT", "FOO", "get") },
);
const range = fc.constantFrom(
  "bytes=0-",
  "bytes=-5",
  "bytes=5-1",
  "bytes=abc",
  "bytes=0-1,2-3",
  "items=0-1",
  "bytes=99999999999999999999-",
  "bytes=-0",
  "bytes=1-2-3",
  "bytes= 0 - 1",
);
const contentLength = fc.constantFrom("-1", "abc", "1e3", "99999999999999999999", "", "0x10", "5, 6", " 7");
const authorization = fc.oneof(
  fc.constantFrom("Basic", "Basic !!!", "Bearer abc", "Basic YWxpY2U=", "Basic =", "basic YTpi", "Digest x"),
  fc
    .tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }))
    .map(([user, password]) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`),
  fc.constant(`Basic ${Buffer.from(`${ALICE[0]}:wrong`).toString("base64")}`),
  fc.constant(`Basic ${Buffer.from(ALICE.join(":")).toString("base64")}`),
);
const headerValue = fc.string({ maxLength: 40 }).map((text) => text.replace(/[\r\n]/g, " "));
const extraHeaders = fc.array(
  fc.oneof(
    range.map((value): [string, string] => ["Range", value]),
    authorization.map((value): [string, string] => ["Authorization", value]),
    fc.constantFrom<[string, string]>(
      ["Accept", "application/vnd.x.restic.rest.v2"],
      ["Accept", "application/vnd.x.restic.rest.v1"],
      ["Transfer-Encoding", "chunked"],
      ["Expect", "100-continue"],
    ),
    headerValue.map((value): [string, string] => ["X-Junk", value]),
  ),
  { maxLength: 3 },
);

/** A request aimed at one route family, then bent in the ways above. */
function requestFor(family: (prefix: string) => fc.Arbitrary<string>): fc.Arbitrary<RawRequest> {
  return fc
    .record({
      method,
      target: repoPrefix.chain(family),
      query: fc.constantFrom(
        "",
        "?create=true",
        "?create=false",
        "?create",
        "?%zz=1",
        "?create=true&create=x",
      ),
      headers: extraHeaders,
      length: fc.option(contentLength, { nil: undefined }),
      body: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
      truncate: fc.boolean(),
    })
    .map(({ method, target, query, headers, length, body, truncate }) => {
      const all: Array<[string, string]> = [...headers];
      const declaredText = length ?? (method === "POST" || body.length > 0 ? String(body.length) : undefined);
      if (declaredText !== undefined) all.push(["Content-Length", declaredText]);
      const sent = truncate ? Math.floor(body.length / 2) : body.length;
      // A declared length beyond what is sent is a truncated body too: the client hangs up.
      const declared = /^\s*\d+\s*$/.test(declaredText ?? "") ? Number(declaredText) : sent;
      return { method, target: `${target}${query}`, headers: all, body, sent, truncated: declared > sent };
    });
}

const FAMILIES: Record<string, (prefix: string) => fc.Arbitrary<string>> = {
  "repo create": (prefix) => fc.constant(`${prefix}/`),
  config: (prefix) => fc.constantFrom(`${prefix}/config`, `${prefix}/config/`, `${prefix}/config/x`),
  list: (prefix) => fc.constantFrom(...TYPES).map((type) => `${prefix}/${type}/`),
  blob: (prefix) =>
    fc
      .tuple(fc.constantFrom(...TYPES, "config", "nope"), fc.oneof(hex64, oddSegment))
      .map(([type, name]) => `${prefix}/${type}/${name}`),
  "data blob": (prefix) => hex64.map((id) => `${prefix}/data/${id.slice(0, 2)}/${id}`),
  metrics: () => fc.constantFrom("/metrics", "/metrics/", "/metrics?x=1", "//metrics", "/metrics/../config"),
  "raw path": () =>
    fc.constantFrom(
      "*",
      "http://example.invalid/config",
      "/../../etc/passwd",
      "/%2e%2e/%2e%2e/etc/passwd",
      "",
    ),
};

interface RawReply {
  status: number | undefined;
  raw: string;
}

/** Send the bytes on a fresh connection; the status of the reply, if one came before the close. */
function send(port: number, request: RawRequest): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error("no reply within 10 s")), 10_000);
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", (error: NodeJS.ErrnoException) => {
      // A reset after a truncated body is the server hanging up on it: fine.
      if (error.code === "ECONNRESET" || error.code === "EPIPE") return;
      clearTimeout(timer);
      reject(error);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString("latin1");
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1];
      resolve({ status: status === undefined ? undefined : Number(status), raw: raw.slice(0, 300) });
    });
    const head = [
      `${request.method} ${request.target} HTTP/1.1`,
      "Host: 127.0.0.1",
      "Connection: close",
      ...request.headers.map(([name, value]) => `${name}: ${value}`),
    ].join("\r\n");
    socket.write(`${head}\r\n\r\n`);
    socket.write(request.body.subarray(0, request.sent));
    // A truncated body ends with the client hanging up; a complete request waits for the reply
    // (a half-close would make node:http drop a request still being answered, as it should).
    if (request.truncated) socket.end();
  });
}

/** Every file and directory under `dir` with size and mtime, except the `skip` subtree. */
async function snapshotTree(dir: string, skip: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(entry.parentPath, entry.name);
    if (full === skip || full.startsWith(`${skip}/`)) continue;
    const info = await stat(full);
    out.push(`${full} ${info.size} ${info.mtimeMs}`);
  }
  return out.sort();
}

/** Where the server keeps the repositories: under --path, or in a bucket of the test host's Ceph RGW. */
const STORAGES = [{ storage: "fs" as const }, { storage: "s3" as const }];

describe.each(STORAGES)(
  `rest-server under generated bad requests (seed ${SEED}, $storage storage)`,
  ({ storage }) => {
    const scope = useScope();

    it.each([
      // Without --append-only (and with the fuzzer allowed in) DELETE may rightly remove the repository.
      { name: "plain", flags: ["--no-auth"], repoSurvives: false },
      { name: "append-only", flags: ["--no-auth", "--append-only"], repoSurvives: true },
      // The fuzzer knows only alice's password; the repository belongs to the user base.
      { name: "private repos", flags: ["--private-repos"], repoSurvives: true },
      { name: "append-only private repos", flags: ["--append-only", "--private-repos"], repoSurvives: true },
    ])("$name: never a 5xx, nothing outside --path, the server stays up", async ({ flags, repoSurvives }) => {
      const outer = await scope.tempDir("stowage-fuzz-");
      const root = path.join(outer, "repos");
      await mkdir(root);
      await writeFile(path.join(outer, "outside-sentinel"), "must stay unchanged\n");
      const auth = !flags.includes("--no-auth");
      if (auth) {
        await htpasswdFile(path.join(root, ".htpasswd"), [
          [...ALICE, { bcrypt: 4 }],
          ["base", "base-pw", "sha"],
        ]);
      }
      const port = await freePort();
      const ceph = storage === "s3" ? cephS3() : undefined;
      const bucket = ceph ? testBucket(scope) : undefined;
      const onS3 = ceph ? ["--storage", `s3://${bucket}/repos`, "--s3-endpoint", ceph.endpoint] : [];
      const server = await spawnServer(
        scope,
        ["--path", root, "--listen", `127.0.0.1:${port}`, "--prometheus", ...onS3, ...flags],
        ceph?.env ?? {},
      );

      // A repository backed up before the storm.
      const source = await scope.tempDir("stowage-fuzz-src-");
      await writeFile(path.join(source, "file"), randomBytes(256 * 1024));
      const credentials = auth ? "base:base-pw@" : "";
      const restic = await resticClient(scope, `rest:http://${credentials}127.0.0.1:${port}/base/`);
      await restic.run(["init"]);
      await restic.run(["backup", source]);
      const outsideBefore = await snapshotTree(outer, root);

      for (const [family, shape] of Object.entries(FAMILIES)) {
        await fc.assert(
          fc.asyncProperty(requestFor(shape), async (request) => {
            const reply = await send(port, request);
            if (reply.status === undefined) {
              // Only a request whose body never fully arrived may go unanswered.
              expect(request.truncated, `no reply to ${JSON.stringify(request)}`).toBe(true);
              return;
            }
            expect(reply.status, `${family}: ${reply.raw}`).toBeLessThan(500);
          }),
          { seed: SEED, numRuns: RUNS_PER_FAMILY, endOnFailure: true },
        );
      }

      expect(server.child.exitCode).toBeNull();
      expect(await snapshotTree(outer, root)).toEqual(outsideBefore);
      if (bucket) {
        // Nothing outside the prefix, and nothing at all in the local --path but the htpasswd file.
        const keys = await listKeys(s3Client(), bucket);
        expect(keys.filter(({ key }) => !key.startsWith("repos/"))).toEqual([]);
        expect((await readdir(root)).filter((name) => name !== ".htpasswd")).toEqual([]);
        // Every object stored under a blob's name holds exactly what that name hashes.
        const client = s3Client();
        for (const { key } of keys) {
          const name = key.split("/").at(-1) ?? "";
          if (!/^[0-9a-f]{64}$/.test(name)) continue;
          const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
          const content = (await object.Body?.transformToByteArray()) ?? new Uint8Array();
          expect(createHash("sha256").update(content).digest("hex"), key).toBe(name);
        }
      }
      const errors = server
        .output()
        .split("\n")
        .filter((line) => line.includes('"level":"error"') || line.includes("    at "));
      expect(errors, errors.join("\n")).toEqual([]);
      if (repoSurvives) {
        await restic.run(["check", "--read-data"]);
        expect(await restic.json<unknown[]>(["snapshots"])).toHaveLength(1);
      }
      const alive = await send(port, {
        method: "GET",
        target: "/metrics",
        headers: [],
        body: Buffer.alloc(0),
        sent: 0,
        truncated: false,
      });
      expect(alive.status).toBeLessThan(500);
    });
  },
);
