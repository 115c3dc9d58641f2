import { readdir, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useScope } from "../support/scope.js";
import { createRepo, request, sha256, startTestServer } from "./fixture.js";

const blob = (n: number, fill: number) => Buffer.alloc(n, fill);

async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => e.name);
}

describe("rest-server quotas", () => {
  const scope = useScope();

  it("enforces --max-size for the whole path with 507, writing nothing", async () => {
    const { url, root } = await startTestServer(scope, { maxSize: 1000 });
    await createRepo(url, "/");
    const first = blob(600, 1);
    expect((await request(url, `/data/${sha256(first)}`, { method: "POST", body: first })).status).toBe(200);
    const second = blob(600, 2);
    const refused = await request(url, `/data/${sha256(second)}`, { method: "POST", body: second });
    expect(refused.status).toBe(507);
    expect(await allFiles(root)).toEqual([sha256(first)]);
    // Deleting frees room.
    await request(url, `/data/${sha256(first)}`, { method: "DELETE" });
    expect((await request(url, `/data/${sha256(second)}`, { method: "POST", body: second })).status).toBe(
      200,
    );
  });

  it("counts what is already stored at start-up, and removes stale temp files", async () => {
    const root = await scope.tempDir("stowage-rest-");
    const first = await startTestServer(scope, { path: root });
    await createRepo(first.url, "/");
    const old = blob(900, 3);
    await request(first.url, `/data/${sha256(old)}`, { method: "POST", body: old });
    await writeFile(path.join(root, "data", "00", ".tmp-leftover"), "crash debris");
    const { url } = await startTestServer(scope, { path: root, maxSize: 1000 });
    const next = blob(200, 4);
    expect((await request(url, `/data/${sha256(next)}`, { method: "POST", body: next })).status).toBe(507);
    expect(await allFiles(root)).toEqual([sha256(old)]);
  });

  it("enforces per-user and per-repository limits from a quota file", async () => {
    const root = await scope.tempDir("stowage-rest-");
    const quotaFile = path.join(await scope.tempDir(), "quota.yaml");
    await writeFile(quotaFile, "users:\n  alice: 1000\nrepos:\n  bob/small: 100\n");
    const { url } = await startTestServer(scope, { path: root, quotaFile });
    for (const repo of ["/alice/a/", "/alice/b/", "/bob/small/", "/bob/big/"]) await createRepo(url, repo);
    const post = (repo: string, body: Buffer) =>
      request(url, `${repo}data/${sha256(body)}`, { method: "POST", body }).then((r) => r.status);
    expect(await post("/alice/a/", blob(600, 1))).toBe(200);
    const overUser = await request(url, `/alice/b/data/${sha256(blob(600, 2))}`, {
      method: "POST",
      body: blob(600, 2),
    });
    expect([overUser.status, overUser.text.trim()]).toEqual([507, "storage limit of user alice reached"]);
    expect(await post("/alice/b/", blob(300, 3))).toBe(200);
    expect(await post("/bob/small/", blob(101, 4))).toBe(507);
    expect(await post("/bob/small/", blob(100, 5))).toBe(200);
    expect(await post("/bob/big/", blob(5000, 6))).toBe(200);
  });

  it("reserves room for uploads still in flight, so concurrent uploads cannot pass the limit", async () => {
    const { url, root } = await startTestServer(scope, { maxSize: 1000 });
    await createRepo(url, "/");
    const slow = blob(700, 7);
    const { port } = new URL(url);
    // Start an upload and keep its body incomplete while a second one asks for room.
    const pending = http.request({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: `/data/${sha256(slow)}`,
      headers: { "Content-Length": "700" },
      agent: false,
    });
    const finished = new Promise<number>((resolve, reject) => {
      pending.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      pending.on("error", reject);
    });
    pending.write(slow.subarray(0, 100));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const other = blob(400, 8);
    expect((await request(url, `/data/${sha256(other)}`, { method: "POST", body: other })).status).toBe(507);
    pending.end(slow.subarray(100));
    expect(await finished).toBe(200);
    expect(await allFiles(root)).toEqual([sha256(slow)]);
  });
});
