import { randomBytes } from "node:crypto";
import net from "node:net";
import { describe, expect, it } from "vitest";
import { useScope } from "../support/scope.js";
import type { TestBackend } from "./backends.js";
import { createRepo, rawExchange, request, sha256, V2 } from "./fixture.js";

export const V1 = "application/vnd.x.restic.rest.v1";

/**
 * The REST protocol as restic and upstream's tests use it, against one storage: the same suite runs
 * on a directory (protocol.test.ts) and on Ceph RGW (protocol-s3.integration.test.ts).
 */
export function describeProtocol(backend: TestBackend): void {
  describe(`rest-server protocol (${backend.kind} storage)`, () => {
    const scope = useScope();
    const start = (overrides = {}) => backend.start(scope, overrides);

    it("creates a repository idempotently; POST needs ?create=true; GET on it is 405", async () => {
      const { url } = await start();
      await createRepo(url, "/alice/laptop/");
      await createRepo(url, "/alice/laptop/");
      expect((await request(url, "/alice/laptop/keys/")).text).toBe("[]");
      expect((await request(url, "/alice/", { method: "POST" })).status).toBe(400);
      const get = await request(url, "/alice/");
      expect([get.status, get.headers.allow]).toEqual([405, "POST"]);
    });

    it("stores config create-only and answers HEAD with Content-Length", async () => {
      const { url } = await start();
      await createRepo(url, "/");
      expect((await request(url, "/config", { method: "HEAD" })).status).toBe(404);
      expect((await request(url, "/config", { method: "POST", body: "config-bytes" })).status).toBe(200);
      const head = await request(url, "/config", { method: "HEAD" });
      expect([head.status, head.headers["content-length"]]).toEqual([200, "12"]);
      expect((await request(url, "/config")).text).toBe("config-bytes");
      const again = await request(url, "/config", { method: "POST", body: "other" });
      expect(again.status).toBe(403);
      expect((await request(url, "/config")).text).toBe("config-bytes");
      expect((await request(url, "/config", { method: "DELETE" })).status).toBe(200);
      expect((await request(url, "/config", { method: "DELETE" })).status).toBe(200);
      expect((await request(url, "/config")).status).toBe(404);
    });

    it("lists v1 and v2 by exact Accept header, with exact Content-Type, [] when empty, 404 when missing", async () => {
      const { url } = await start();
      await createRepo(url, "/r/");
      const emptyV1 = await request(url, "/r/keys/");
      expect([emptyV1.status, emptyV1.headers["content-type"], emptyV1.text]).toEqual([200, V1, "[]"]);
      const body = "key material";
      await request(url, `/r/keys/${sha256(body)}`, { method: "POST", body });
      const data = "pack";
      await request(url, `/r/data/${sha256(data)}`, { method: "POST", body: data });
      const v2 = await request(url, "/r/keys/", { headers: { Accept: V2 } });
      expect(v2.headers["content-type"]).toBe(V2);
      expect(JSON.parse(v2.text)).toEqual([{ name: sha256(body), size: body.length }]);
      expect(JSON.parse((await request(url, "/r/data/")).text)).toEqual([sha256(data)]);
      const v2charset = await request(url, "/r/keys/", { headers: { Accept: `${V2}; charset=utf-8` } });
      expect(v2charset.headers["content-type"]).toBe(V1);
      expect((await request(url, "/nothing/keys/")).status).toBe(404);
      const post = await request(url, "/r/keys/", { method: "POST", body: "x" });
      expect([post.status, post.headers.allow]).toEqual([405, "GET"]);
    });

    it("uploads blobs verified by SHA-256, serves them with Range, deletes idempotently", async () => {
      const { url, objects } = await start();
      await createRepo(url, "/");
      const blob = Buffer.from("0123456789abcdefghij");
      const id = sha256(blob);
      expect((await request(url, `/data/${id}`, { method: "POST", body: blob })).status).toBe(200);
      expect(await objects()).toEqual([`data/${id.slice(0, 2)}/${id}`]);

      const head = await request(url, `/data/${id}`, { method: "HEAD" });
      expect([head.status, head.headers["content-length"]]).toEqual([200, "20"]);
      expect((await request(url, `/data/${id}`)).body).toEqual(blob);
      const partial = await request(url, `/data/${id}`, { headers: { Range: "bytes=5-9" } });
      expect([partial.status, partial.text, partial.headers["content-range"]]).toEqual([
        206,
        "56789",
        "bytes 5-9/20",
      ]);
      const tail = await request(url, `/data/${id}`, { headers: { Range: "bytes=15-" } });
      expect([tail.status, tail.text]).toEqual([206, "fghij"]);
      const beyond = await request(url, `/data/${id}`, { headers: { Range: "bytes=20-" } });
      expect([beyond.status, beyond.headers["content-range"]]).toEqual([416, "bytes */20"]);
      const multi = await request(url, `/data/${id}`, { headers: { Range: "bytes=0-1,3-4" } });
      expect([multi.status, multi.body.length]).toEqual([200, 20]);

      expect((await request(url, `/data/${id}`, { method: "DELETE" })).status).toBe(200);
      expect((await request(url, `/data/${id}`, { method: "DELETE" })).status).toBe(200);
      expect((await request(url, `/data/${id}`, { method: "HEAD" })).status).toBe(404);
      const put = await request(url, `/data/${id}`, { method: "PUT", body: blob });
      expect([put.status, put.headers.allow]).toEqual([405, "GET, HEAD, POST, DELETE"]);
    });

    it("rejects a wrong hash and writes nothing; accepts an identical re-upload; 403 on different content", async () => {
      const { url, objects } = await start();
      await createRepo(url, "/");
      const body = "snapshot";
      const wrong = await request(url, `/snapshots/${sha256("other")}`, { method: "POST", body });
      expect(wrong.status).toBe(400);
      expect(wrong.text).toContain("SHA-256");
      expect(await objects()).toEqual([]);
      expect((await request(url, `/snapshots/${sha256(body)}`, { method: "POST", body })).status).toBe(200);
      expect((await request(url, `/snapshots/${sha256(body)}`, { method: "POST", body })).status).toBe(200);
    });

    it("refuses an empty body under any name but the SHA-256 of nothing, and stores nothing", async () => {
      // Ceph RGW checks a PUT's signed payload hash only when there is a payload: an empty body
      // under a blob's name would be stored (found by the generated bad requests).
      const { url, objects } = await start();
      await createRepo(url, "/");
      for (const type of ["keys", "snapshots", "index", "locks"]) {
        const empty = await request(url, `/${type}/${sha256("not empty")}`, { method: "POST", body: "" });
        expect([type, empty.status]).toEqual([type, 400]);
        expect(empty.text).toContain("SHA-256");
      }
      const data = await request(url, `/data/${sha256("x")}`, { method: "POST", body: "" });
      expect(data.status).toBe(400);
      expect(await objects()).toEqual([]);
      // The one name an empty body has is accepted.
      expect((await request(url, `/locks/${sha256("")}`, { method: "POST", body: "" })).status).toBe(200);
    });

    it("refuses ids that are not 64 lowercase hex characters, for every method", async () => {
      const { url } = await start();
      await createRepo(url, "/");
      for (const name of ["A".repeat(64), "a".repeat(63), "g".repeat(64), "config"]) {
        for (const method of ["GET", "HEAD", "POST", "DELETE"]) {
          const reply = await request(url, `/data/${name}`, {
            method,
            ...(method === "POST" ? { body: "x" } : {}),
          });
          expect(reply.status, `${method} ${name}`).toBe(400);
        }
      }
      expect((await request(url, "/a/b/c/d")).status).toBe(404);
    });

    it("refuses path traversal in every spelling, and stores nothing", async () => {
      const { url, objects } = await start();
      for (const evil of TRAVERSALS) {
        const reply = await request(url, evil, { method: "POST" });
        expect(reply.status, evil).toBe(400);
      }
      expect(await objects()).toEqual([]);
    });

    it("requires Content-Length on uploads (411) and writes nothing for a chunked body", async () => {
      const { url, objects } = await start();
      await createRepo(url, "/");
      const body = "chunked";
      const reply = await request(url, `/keys/${sha256(body)}`, { method: "POST", body, chunked: true });
      expect(reply.status).toBe(411);
      expect(await objects()).toEqual([]);
    });

    it("serves large objects whole and by ranges across read chunks, byte-identical", async () => {
      const { url } = await start();
      await createRepo(url, "/");
      const blob = randomBytes(5 * 1024 * 1024 + 12345);
      const id = sha256(blob);
      expect((await request(url, `/data/${id}`, { method: "POST", body: blob })).status).toBe(200);
      expect((await request(url, `/data/${id}`)).body.equals(blob)).toBe(true);
      // Across and at the edges of the fs storage's 512 KiB read chunks.
      for (const [first, last] of [
        [500_000, 1_100_000],
        [0, 524_287],
        [524_288, 524_288],
        [blob.length - 70_000, blob.length - 1],
      ] as const) {
        const reply = await request(url, `/data/${id}`, { headers: { Range: `bytes=${first}-${last}` } });
        expect(reply.status).toBe(206);
        expect(reply.body.equals(blob.subarray(first, last + 1))).toBe(true);
      }
    });

    it("serves many downloads at once, each byte-identical, again and again", async () => {
      // The fs storage reuses its read buffers from one download to the next.
      const { url } = await start();
      await createRepo(url, "/");
      const blobs = Array.from({ length: 6 }, () => randomBytes(1024 * 1024 + 4321));
      for (const blob of blobs) {
        expect((await request(url, `/data/${sha256(blob)}`, { method: "POST", body: blob })).status).toBe(
          200,
        );
      }
      for (let round = 0; round < 3; round++) {
        const replies = await Promise.all(
          [...blobs, ...blobs].map((blob) => request(url, `/data/${sha256(blob)}`)),
        );
        for (const [i, reply] of replies.entries()) {
          expect(reply.body.equals(blobs[i % blobs.length] as Buffer)).toBe(true);
        }
      }
    });

    it("lists every blob of a folder that takes several batches, with sizes, across folders", async () => {
      const { url, plant } = await start();
      await createRepo(url, "/");
      // 1,100 index blobs (batches of 512) and data blobs in three data/XX folders.
      const index = Array.from({ length: 1100 }, (_, i) => sha256(`index ${i}`));
      await Promise.all(index.map((id, i) => plant(`index/${id}`, "x".repeat(i % 7))));
      const data = ["00", "7f", "ff"].map((sub, i) => `${sub}${sha256(`data ${i}`).slice(2)}`);
      await Promise.all(data.map((id) => plant(`data/${id.slice(0, 2)}/${id}`, id)));
      const listed = JSON.parse((await request(url, "/index/", { headers: { Accept: V2 } })).text) as {
        name: string;
        size: number;
      }[];
      expect(listed.map((entry) => entry.name).sort()).toEqual([...index].sort());
      const sizes = new Map(index.map((id, i) => [id, i % 7]));
      for (const entry of listed) expect(entry.size).toBe(sizes.get(entry.name));
      expect((JSON.parse((await request(url, "/data/")).text) as string[]).sort()).toEqual(data);
    });

    it("keeps serving after a client cuts a download half-way", async () => {
      const { url } = await start();
      await createRepo(url, "/");
      const blob = randomBytes(8 * 1024 * 1024);
      const id = sha256(blob);
      await request(url, `/data/${id}`, { method: "POST", body: blob });
      const { port } = new URL(url);
      for (let attempt = 0; attempt < 3; attempt++) {
        const socket = net.connect(Number(port), "127.0.0.1");
        socket.write(`GET /data/${id} HTTP/1.1\r\nHost: x\r\n\r\n`);
        let received = 0;
        await new Promise<void>((resolve) => {
          socket.on("data", (chunk: Buffer) => {
            received += chunk.length;
            if (received > 1024 * 1024) {
              socket.destroy();
              resolve();
            }
          });
        });
      }
      expect((await request(url, `/data/${id}`)).body.equals(blob)).toBe(true);
    });

    it("leaves no file, temp or final, when the connection is cut mid-upload", async () => {
      const { url, objects } = await start();
      await createRepo(url, "/");
      const { port } = new URL(url);
      const id = sha256("never complete");
      const socket = net.connect(Number(port), "127.0.0.1");
      await new Promise((resolve) => socket.once("connect", resolve));
      socket.write(`POST /data/${id} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n`);
      socket.write(Buffer.alloc(30000, 1));
      await new Promise((resolve) => setTimeout(resolve, 100));
      socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await objects()).toEqual([]);
      expect(JSON.parse((await request(url, "/data/")).text)).toEqual([]);
    });

    it("answers oversized headers with 431", async () => {
      const { url } = await start();
      const reply = await rawExchange(
        url,
        `GET /config HTTP/1.1\r\nHost: x\r\nX-Big: ${"x".repeat(64 * 1024)}\r\n\r\n`,
      );
      expect(reply).toMatch(/^HTTP\/1\.1 431 /);
    });

    it("never lists temp files or foreign names", async () => {
      const { url, plant } = await start();
      await createRepo(url, "/");
      const id = sha256("x");
      await plant(`index/.tmp-${id}-abc`, "partial");
      await plant("index/README", "not a blob");
      await plant(`data/00/.tmp-${id}`, "partial");
      // In the wrong data/XX folder, or at the wrong depth: not a blob either.
      await plant(`data/ff/${id}`, "misplaced");
      await plant(`data/${id}`, "flat");
      expect(JSON.parse((await request(url, "/index/", { headers: { Accept: V2 } })).text)).toEqual([]);
      expect(JSON.parse((await request(url, "/data/")).text)).toEqual([]);
    });
  });
}

/** Path traversal in every spelling upstream's and our fuzzers found. */
export const TRAVERSALS = [
  "/../x/?create=true",
  "/%2e%2e/x/?create=true",
  "/a/%2E%2e/?create=true",
  "/a%2f..%2fb/?create=true",
  "/a%00/?create=true",
  "/./?create=true",
];
