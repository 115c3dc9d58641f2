import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { DeleteBucketPolicyCommand, PutBucketPolicyCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { resticClient, restoredDiff } from "../support/restic.js";
import { cephS3, ownGateway, s3Client, testBucket } from "../support/s3.js";
import { freePort, type TestScope, useScope } from "../support/scope.js";
import { request, sha256 } from "./fixture.js";
import { spawnS3Server } from "./s3-server.js";

/** Random blobs made by head(1) from /dev/urandom, stored through the server under their hashes. */
async function storeBlobs(scope: TestScope, url: string, sizes: number[]): Promise<Map<string, Buffer>> {
  const dir = await scope.tempDir("stowage-upstream-blobs-");
  expect((await request(url, "/r/?create=true", { method: "POST" })).status).toBe(200);
  const blobs = new Map<string, Buffer>();
  for (const [index, size] of sizes.entries()) {
    const file = path.join(dir, `b${index}`);
    await run("sh", ["-c", `head -c ${size} /dev/urandom > ${file}`]);
    const body = await readFile(file);
    const id = sha256(body);
    expect((await request(url, `/r/data/${id}`, { method: "POST", body })).status).toBe(200);
    blobs.set(id, body);
  }
  return blobs;
}

/** A download read by a client that can stop after `stopAfter` bytes or pause for `pauseMs` once. */
function download(
  url: string,
  id: string,
  options: { stopAfter?: number; pauseMs?: number; range?: string } = {},
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const target = new URL(`/r/data/${id}`, url);
    const req = http.get(
      target,
      { agent: false, headers: options.range ? { Range: options.range } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        let length = 0;
        let paused = false;
        res.on("data", (chunk: Buffer) => {
          chunks.push(chunk);
          length += chunk.length;
          if (options.stopAfter !== undefined && length >= options.stopAfter) {
            req.destroy();
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
          } else if (options.pauseMs !== undefined && !paused) {
            paused = true;
            res.pause();
            setTimeout(() => res.resume(), options.pauseMs);
          }
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("error", (error) => (options.stopAfter !== undefined ? undefined : reject(error)));
  });
}

describe("rest-server on S3 reads through its own kept connections (upstream-get)", () => {
  const scope = useScope();

  it("many reads at once, clients that vanish or pause, ranges: every body whole and right", async () => {
    const ceph = cephS3();
    const bucket = testBucket(scope);
    const server = await spawnS3Server(scope, bucket, "g", ceph.endpoint);
    const sizes = [1, 100 * 1024, 3 * 1024 * 1024, 7 * 1024 * 1024 + 1, 16 * 1024 * 1024, 600 * 1024];
    const blobs = await storeBlobs(scope, server.url, sizes);
    const ids = [...blobs.keys()];
    const big = ids[4] as string;

    // Clients that go away part-way, among whole reads of every blob (4 at once each).
    const reads = await Promise.all([
      ...ids.flatMap((id) => [0, 1, 2, 3].map(() => download(server.url, id))),
      ...[1, 2, 3, 4].map((n) => download(server.url, big, { stopAfter: n * 1024 * 1024 })),
      download(server.url, big, { pauseMs: 1500 }),
    ]);
    for (const read of reads.slice(0, ids.length * 4)) {
      expect(read.status).toBe(200);
      expect(blobs.has(sha256(read.body))).toBe(true);
    }
    const paused = reads.at(-1) as { status: number; body: Buffer };
    expect(sha256(paused.body)).toBe(big);

    // And afterwards (buffers and connections reused), everything still reads right, ranges too.
    for (const id of ids) expect(sha256((await download(server.url, id)).body)).toBe(id);
    const seven = ids[3] as string;
    const ranged = await download(server.url, seven, { range: "bytes=1048570-2097160" });
    expect(ranged.status).toBe(206);
    expect(ranged.body).toEqual((blobs.get(seven) as Buffer).subarray(1048570, 2097161));
    const tail = await download(server.url, seven, { range: "bytes=-5" });
    expect(tail.body).toEqual((blobs.get(seven) as Buffer).subarray(-5));
    expect(server.output()).not.toContain('"level":50');
  });

  it("radosgw restarted between reads: a kept connection found closed is replaced, an outage is 503", async () => {
    const bucket = testBucket(scope);
    const gateway = await ownGateway(scope, await freePort());
    const server = await spawnS3Server(scope, bucket, "g", gateway.endpoint);
    const [id] = [...(await storeBlobs(scope, server.url, [2 * 1024 * 1024])).keys()] as [string];
    expect(sha256((await download(server.url, id)).body)).toBe(id);
    await gateway.restart();
    // The connection the last read left open died with the gateway: the read is sent again.
    const again = await download(server.url, id);
    expect(again.status).toBe(200);
    expect(sha256(again.body)).toBe(id);

    const restarting = gateway.restart(4000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await download(server.url, id)).status).toBe(503);
    await restarting;
    expect(sha256((await download(server.url, id)).body)).toBe(id);
    expect(server.output()).toContain('"action":"s3.failed"');
  });

  it("reads over TLS (RGW with a certificate for its name): restic backs up, checks and restores", async () => {
    const bucket = testBucket(scope);
    const gateway = await ownGateway(scope, await freePort(), { tls: true });
    const server = await spawnS3Server(scope, bucket, "g", gateway.endpoint, {
      env: { NODE_EXTRA_CA_CERTS: gateway.caFile as string },
    });
    const source = await scope.tempDir("stowage-upstream-tls-src-");
    await run("sh", ["-c", `cd ${source} && head -c 5000000 /dev/urandom > big && echo small > small`]);
    const restic = await resticClient(scope, `rest:${server.url}/tls/`);
    await restic.run(["init"]);
    await restic.run(["backup", source]);
    await restic.run(["check", "--read-data"]);
    expect(await restoredDiff(scope, restic, source)).toBe("");
  });

  it("a read the storage refuses (a bucket policy denies GetObject) is 503 with the storage's error named", async () => {
    const ceph = cephS3();
    const bucket = testBucket(scope);
    const server = await spawnS3Server(scope, bucket, "g", ceph.endpoint);
    const [id] = [...(await storeBlobs(scope, server.url, [4096])).keys()] as [string];
    const client = s3Client();
    const Policy = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        { Effect: "Deny", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${bucket}/*` },
      ],
    });
    await client.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy }));
    scope.defer("drop the bucket policy", () =>
      client.send(new DeleteBucketPolicyCommand({ Bucket: bucket })),
    );
    const refused = await download(server.url, id);
    expect(refused.status).toBe(503);
    expect(server.output()).toMatch(/"action":"s3.failed".*"status":403.*"err":"AccessDenied"/);
    await client.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
    expect(sha256((await download(server.url, id)).body)).toBe(id);
  });
});
