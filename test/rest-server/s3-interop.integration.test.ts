import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { type ResticClient, resticClient, restoredDiff } from "../support/restic.js";
import { cephS3, listKeys, ownGateway, s3Client, testBucket } from "../support/s3.js";
import { freePort, type TestScope, useScope } from "../support/scope.js";
import { request, sha256 } from "./fixture.js";
import { spawnS3Server } from "./s3-server.js";

async function tree(scope: TestScope, megabytes: number): Promise<string> {
  const dir = await scope.tempDir("stowage-s3-tree-");
  await run("sh", [
    "-c",
    `cd ${dir} && mkdir -p a/b && head -c ${megabytes * 1024 * 1024} /dev/urandom > a/big && for i in $(seq 1 30); do echo $i > a/b/$i; done`,
  ]);
  return dir;
}

async function sameTree(scope: TestScope, restic: ResticClient, source: string) {
  expect(await restoredDiff(scope, restic, source)).toBe("");
}

describe("rest-server on S3: the layout of restic's own s3 backend, both ways", () => {
  const scope = useScope();

  it("a repository written through us is read by `restic -r s3:` directly, and the other way round", async () => {
    const ceph = cephS3();
    const bucket = testBucket(scope);
    const server = await spawnS3Server(scope, bucket, "p", ceph.endpoint);
    const s3 = (repo: string) => `s3:${ceph.endpoint}/${bucket}/p/${repo}`;
    const env = { env: ceph.env };

    const ours = await tree(scope, 4);
    const viaRest = await resticClient(scope, `rest:${server.url}/written-by-rest/`, { password: "pw-1" });
    await viaRest.run(["init"]);
    await viaRest.run(["backup", ours]);
    const direct = await resticClient(scope, s3("written-by-rest"), { password: "pw-1", ...env });
    await direct.run(["check", "--read-data"]);
    await sameTree(scope, direct, ours);

    const theirs = await tree(scope, 3);
    const native = await resticClient(scope, s3("written-by-s3"), { password: "pw-2", ...env });
    await native.run(["init"]);
    await native.run(["backup", theirs]);
    const served = await resticClient(scope, `rest:${server.url}/written-by-s3/`, { password: "pw-2" });
    await served.run(["check", "--read-data"]);
    await sameTree(scope, served, theirs);
    // And one more backup through us into restic's repository: both still agree on everything.
    await served.run(["backup", ours]);
    await native.run(["check", "--read-data"]);
    expect(await native.json<unknown[]>(["snapshots"])).toHaveLength(2);
  });

  it("radosgw restarted in the middle of a backup: restic's retries finish it, check --read-data is clean", async () => {
    const bucket = testBucket(scope);
    const gateway = await ownGateway(scope, await freePort());
    const server = await spawnS3Server(scope, bucket, "p", gateway.endpoint);
    const restic = await resticClient(scope, `rest:${server.url}/r/`, { password: "pw" });
    await restic.run(["init"]);
    const source = await tree(scope, 150);
    const backup = restic.run(["backup", source]);
    // Once packs are arriving, take the gateway away for two seconds.
    for (let i = 0; i < 200; i++) {
      const keys = await listKeys(s3Client(), bucket, "p/r/data/");
      if (keys.length >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await gateway.restart(2000);
    await backup;
    // The outage was seen (and answered 503, which restic retries), not missed.
    expect(server.output()).toContain('"action":"s3.failed"');
    await restic.run(["check", "--read-data"]);
    await sameTree(scope, restic, source);
  });
});

describe("rest-server on S3: quotas across instances", () => {
  const scope = useScope();

  it("two instances told --instances 2 never pass --max-size together; a rescan hands the room around", async () => {
    const ceph = cephS3();
    const bucket = testBucket(scope);
    const limit = 12 * 1024 * 1024;
    // No periodic rescan: each instance's view is its start-up scan plus its own writes.
    const extra = ["--max-size", String(limit), "--instances", "2", "--usage-refresh", "0"];
    let a = await spawnS3Server(scope, bucket, "q", ceph.endpoint, { extra });
    const b = await spawnS3Server(scope, bucket, "q", ceph.endpoint, { extra });
    expect((await request(a.url, "/r/?create=true", { method: "POST" })).status).toBe(200);
    let n = 0;
    const upload = (url: string) => {
      const blob = Buffer.alloc(1024 * 1024, n++);
      return request(url, `/r/data/${sha256(blob)}`, { method: "POST", body: blob });
    };
    const fill = async (url: string) => {
      let stored = 0;
      while ((await upload(url)).status === 200) stored++;
      return stored;
    };
    const stored = async () => (await listKeys(s3Client(), bucket, "q/")).reduce((sum, k) => sum + k.size, 0);
    // Both at once until both refuse: each takes at most half of the room its scan saw.
    const [byA, byB] = await Promise.all([fill(a.url), fill(b.url)]);
    expect([byA, byB]).toEqual([6, 6]);
    expect(await stored()).toBeLessThanOrEqual(limit);

    // Space given back (not in append-only mode), then A starts again: its new scan sees B's
    // data and the room left, and shares that out once more.
    const keys = (await listKeys(s3Client(), bucket, "q/r/data/")).slice(0, 4);
    for (const { key } of keys) {
      const id = key.slice(key.lastIndexOf("/") + 1);
      expect((await request(b.url, `/r/data/${id}`, { method: "DELETE" })).status).toBe(200);
    }
    await a.stop();
    a = await spawnS3Server(scope, bucket, "q", ceph.endpoint, { extra });
    expect(await fill(a.url)).toBe(2);
    expect(await stored()).toBeLessThanOrEqual(limit);
  });
});
