import { readFile } from "node:fs/promises";
import path from "node:path";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { htpasswdFile } from "../support/htpasswd.js";
import { resticClient, restoredDiff } from "../support/restic.js";
import { cephS3, listKeys, s3Client, testBucket } from "../support/s3.js";
import { freePort, type TestScope, useScope } from "../support/scope.js";
import { request, V2 } from "./fixture.js";
import { runServerToExit, spawnServer } from "./process.js";

/** The same gateway under another name: what clients reach when it is not what the server uses. */
const publicName = (endpoint: string) => endpoint.replace("//127.0.0.1:", "//localhost:");

async function redirectingServer(scope: TestScope, bucket: string, redirectTo: string | undefined) {
  const ceph = cephS3();
  const root = await scope.tempDir("stowage-s3-redirect-");
  await htpasswdFile(path.join(root, ".htpasswd"), [
    ["alice", "alice-pw", { bcrypt: 4 }],
    ["bob", "bob-pw", { bcrypt: 4 }],
  ]);
  const accessLog = path.join(root, "access.log");
  const server = await spawnServer(
    scope,
    [
      "--storage",
      `s3://${bucket}/p`,
      "--s3-endpoint",
      ceph.endpoint,
      "--s3-redirect-reads",
      ...(redirectTo ? [redirectTo] : []),
      "--path",
      root,
      "--private-repos",
      "--append-only",
      "--log",
      accessLog,
      "--listen",
      `127.0.0.1:${await freePort()}`,
    ],
    ceph.env,
  );
  return { server, accessLog };
}

describe("rest-server on S3 with --s3-redirect-reads: data is read from the storage itself", () => {
  const scope = useScope();

  it("restic backs up through us and reads its packs from RGW by redirect: check --read-data and restore agree", async () => {
    const ceph = cephS3();
    const bucket = testBucket(scope);
    const { server, accessLog } = await redirectingServer(scope, bucket, publicName(ceph.endpoint));
    const source = await scope.tempDir("stowage-s3-redirect-src-");
    await run("sh", [
      "-c",
      `cd ${source} && head -c 6000000 /dev/urandom > big && for i in $(seq 1 20); do echo $i > small-$i; done`,
    ]);
    const url = new URL(server.url);
    const restic = await resticClient(scope, `rest:http://alice:alice-pw@${url.host}/alice/r/`);
    await restic.run(["init"]);
    await restic.run(["backup", source]);
    await restic.run(["check", "--read-data"]);
    expect(await restoredDiff(scope, restic, source)).toBe("");
    // Every pack restic read came by redirect (nothing else is redirected).
    const log = await readFile(accessLog, "utf8");
    const dataReads = log.split("\n").filter((line) => /"GET \/alice\/r\/data\/[0-9a-f]{64} /.test(line));
    expect(dataReads.length).toBeGreaterThan(0);
    for (const line of dataReads) expect(line).toContain('" 307 0 ');
    expect(log).toMatch(/"GET \/alice\/r\/config HTTP\/1.1" 20[06] /);

    const [pack] = await listKeys(s3Client(), bucket, "p/alice/r/data/");
    const id = (pack?.key ?? "").slice(-64);
    const blob = `/alice/r/data/${id}`;
    const alice: [string, string] = ["alice", "alice-pw"];
    // Authentication and private repositories come before any redirect.
    expect((await request(server.url, blob)).status).toBe(401);
    const asBob = await request(server.url, blob, { auth: ["bob", "bob-pw"] });
    expect(asBob.status).toBe(401);
    expect(asBob.headers.location).toBeUndefined();

    // The signed URL names the endpoint the clients reach, and reads the range it is asked for.
    const redirected = await request(server.url, blob, { auth: alice, headers: { Range: "bytes=10-19" } });
    expect(redirected.status).toBe(307);
    const location = redirected.headers.location as string;
    expect(
      location.startsWith(`${publicName(ceph.endpoint)}/${bucket}/p/alice/r/data/${id.slice(0, 2)}/${id}?`),
    ).toBe(true);
    expect(location).not.toContain(ceph.env.AWS_SECRET_ACCESS_KEY);
    const followed = await fetch(location, { headers: { Range: "bytes=10-19" } });
    expect(followed.status).toBe(206);
    const stored = await s3Client().send(
      new GetObjectCommand({ Bucket: bucket, Key: pack?.key, Range: "bytes=10-19" }),
    );
    const expected = Buffer.from(
      await (stored.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
    expect(Buffer.from(await followed.arrayBuffer())).toEqual(expected);

    // HEAD, ranges S3 reads differently, and everything but data blobs are answered by us.
    const head = await request(server.url, blob, { method: "HEAD", auth: alice });
    expect(head.status).toBe(200);
    expect(Number(head.headers["content-length"])).toBe(pack?.size);
    for (const range of ["bytes=-0", "bytes=0-1,5-6"]) {
      const answered = await request(server.url, blob, { auth: alice, headers: { Range: range } });
      expect(answered.headers.location, range).toBeUndefined();
      expect(answered.status, range).not.toBe(307);
    }
    const keys = await request(server.url, "/alice/r/keys/", { auth: alice, headers: { Accept: V2 } });
    const [key] = JSON.parse(keys.text) as { name: string }[];
    const keyRead = await request(server.url, `/alice/r/keys/${key?.name}`, { auth: alice });
    expect(keyRead.status).toBe(200);
    // Append-only still holds: reads are redirected, deletes are not possible at all.
    expect((await request(server.url, blob, { method: "DELETE", auth: alice })).status).toBe(403);
  });

  it("without a URL the redirect names --s3-endpoint; a blob that is not there is RGW's 404", async () => {
    const ceph = cephS3();
    const bucket = testBucket(scope);
    const { server } = await redirectingServer(scope, bucket, undefined);
    const alice: [string, string] = ["alice", "alice-pw"];
    expect((await request(server.url, "/alice/r/?create=true", { method: "POST", auth: alice })).status).toBe(
      200,
    );
    const missing = `/alice/r/data/${"ab".repeat(32)}`;
    const redirected = await request(server.url, missing, { auth: alice });
    expect(redirected.status).toBe(307);
    expect(
      (redirected.headers.location as string).startsWith(`${ceph.endpoint}/${bucket}/p/alice/r/data/ab/`),
    ).toBe(true);
    expect((await fetch(redirected.headers.location as string)).status).toBe(404);
  });

  it("--s3-redirect-reads needs S3 storage and an http(s) URL: a clear error, nothing served", async () => {
    const root = await scope.tempDir("stowage-s3-redirect-bad-");
    const base = ["--path", root, "--no-auth", "--listen", `127.0.0.1:${await freePort()}`];
    const alone = await runServerToExit([...base, "--s3-redirect-reads"]);
    expect(alone.status).toBe(1);
    expect(alone.output).toContain("--s3-redirect-reads needs --storage s3://BUCKET[/PREFIX]");
    const ceph = cephS3();
    const badUrl = await runServerToExit(
      [
        ...base,
        "--storage",
        "s3://stowage-unused",
        "--s3-endpoint",
        ceph.endpoint,
        "--s3-redirect-reads",
        "rgw:7480",
      ],
      ceph.env,
    );
    expect(badUrl.status).toBe(1);
    expect(badUrl.output).toContain("--s3-redirect-reads rgw:7480: expected the endpoint's URL");
  });
});
