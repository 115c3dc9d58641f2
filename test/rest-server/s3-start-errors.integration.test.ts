import { writeFile } from "node:fs/promises";
import path from "node:path";
import { CreateBucketCommand, DeleteBucketPolicyCommand, PutBucketPolicyCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { cephS3, ownGateway, s3Client, testBucket } from "../support/s3.js";
import { freePort, useScope } from "../support/scope.js";
import { request } from "./fixture.js";
import { runServerToExit, spawnServer } from "./process.js";
import { spawnS3Server } from "./s3-server.js";

/**
 * Start-up errors of --storage as a new user meets them, on the real RGW: each names the endpoint,
 * the cause in words and what to try, and the start fails with exit 1.
 */
describe("rest-server --storage: start-up errors a person can act on", () => {
  const scope = useScope();
  const start = async (storage: string, endpoint: string | undefined, env: NodeJS.ProcessEnv) =>
    runServerToExit(
      [
        "--storage",
        storage,
        ...(endpoint ? ["--s3-endpoint", endpoint] : []),
        "--no-auth",
        "--path",
        await scope.tempDir("stowage-s3-errors-"),
        "--listen",
        "127.0.0.1:0",
      ],
      env,
    );
  const ceph = cephS3();
  const noCredentials = {
    AWS_ACCESS_KEY_ID: "",
    AWS_SECRET_ACCESS_KEY: "",
    HOME: "/nonexistent",
    AWS_EC2_METADATA_DISABLED: "true",
  };

  it.each([
    ["no credentials", ceph.endpoint, noCredentials, /no S3 credentials found \(looked in AWS_ACCESS_KEY_ID/],
    [
      "an unknown access key",
      ceph.endpoint,
      { ...ceph.env, AWS_ACCESS_KEY_ID: "NOSUCHKEY0000000" },
      /access key NOSUCHKEY0000000 is not known to 127\.0\.0\.1:\d+: check AWS_ACCESS_KEY_ID/,
    ],
    [
      "a wrong secret",
      ceph.endpoint,
      { ...ceph.env, AWS_SECRET_ACCESS_KEY: "wrong" },
      /the secret key does not match access key \w+ .*check AWS_SECRET_ACCESS_KEY/,
    ],
    [
      "nothing listening",
      "http://127.0.0.1:1",
      ceph.env,
      /connection refused by 127\.0\.0\.1:1: nothing listens there; is the S3 service running\? \(check --s3-endpoint\)/,
    ],
    [
      "a name that does not resolve",
      "http://s3.nonexistent.invalid:7480",
      ceph.env,
      /the name s3\.nonexistent\.invalid does not resolve \(ENOTFOUND\); check --s3-endpoint/,
    ],
    [
      "no --s3-endpoint (AWS, unreachable here)",
      undefined,
      ceph.env,
      /does not resolve .*no --s3-endpoint is given, so AWS S3 is used: for Ceph RGW, MinIO or another S3 service pass --s3-endpoint/,
    ],
    [
      "https:// to a plain HTTP endpoint",
      ceph.endpoint.replace("http://", "https://"),
      ceph.env,
      /failed during the TLS handshake \(EPROTO\): the endpoint may not speak TLS on this port \(try http:\/\/\)/,
    ],
  ])("%s", async (_what, endpoint, env, message) => {
    const bucket = testBucket(scope);
    const { status, output } = await start(`s3://${bucket}/p`, endpoint, env);
    expect(status).toBe(1);
    expect(output).toMatch(
      new RegExp(`rest-server: --storage s3://${bucket}/p: cannot use bucket ${bucket}: `),
    );
    expect(output).toMatch(message);
    // Never a secret in the message.
    expect(output).not.toContain(ceph.env.AWS_SECRET_ACCESS_KEY as string);
  });

  it("a bucket whose policy refuses the key: access denied, naming the key", async () => {
    const client = s3Client();
    const bucket = testBucket(scope, client);
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    const Policy = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        { Effect: "Deny", Principal: "*", Action: "s3:ListBucket", Resource: `arn:aws:s3:::${bucket}` },
      ],
    });
    await client.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy }));
    scope.defer("drop the bucket policy", () =>
      client.send(new DeleteBucketPolicyCommand({ Bucket: bucket })),
    );
    const { status, output } = await start(`s3://${bucket}`, ceph.endpoint, ceph.env);
    expect(status).toBe(1);
    expect(output).toMatch(
      new RegExp(
        `access denied to bucket ${bucket} for access key ${ceph.env.AWS_ACCESS_KEY_ID}: the key is valid`,
      ),
    );
  });

  it("a certificate the server does not trust: names the TLS failure and NODE_EXTRA_CA_CERTS", async () => {
    const gateway = await ownGateway(scope, await freePort(), { tls: true });
    const bucket = testBucket(scope);
    const { status, output } = await start(`s3://${bucket}`, gateway.endpoint, ceph.env);
    expect(status).toBe(1);
    expect(output).toMatch(
      /the TLS certificate of localhost:\d+ is not accepted \(\w+\): give its CA certificate in NODE_EXTRA_CA_CERTS/,
    );
    // With the CA given, the same start works.
    const fine = await spawnS3Server(scope, bucket, "p", gateway.endpoint, {
      env: { NODE_EXTRA_CA_CERTS: gateway.caFile as string },
    });
    expect(fine.url).toMatch(/^http:/);
  });

  it("--mirror: a wrong key in the mirror's profile ends the start naming --mirror; a mirror that is only down is a warning and the server serves", async () => {
    const bucket = testBucket(scope);
    const home = await scope.tempDir("stowage-mirror-home-");
    const credentials = path.join(home, "credentials");
    await writeFile(
      credentials,
      `[offsite]\naws_access_key_id = ${ceph.env.AWS_ACCESS_KEY_ID}\naws_secret_access_key = not-the-secret\n`,
      { mode: 0o600 },
    );
    const path_ = await scope.tempDir("stowage-mirror-path-");
    const wrong = await runServerToExit(
      [
        "--path",
        path_,
        "--no-auth",
        "--listen",
        "127.0.0.1:0",
        "--mirror",
        `s3://${bucket}/m`,
        "--mirror-s3-endpoint",
        ceph.endpoint,
        "--mirror-s3-profile",
        "offsite",
      ],
      { ...ceph.env, AWS_SHARED_CREDENTIALS_FILE: credentials },
    );
    expect(wrong.status).toBe(1);
    expect(wrong.output).toMatch(
      new RegExp(
        `rest-server: --mirror s3://${bucket}/m: cannot use bucket ${bucket}: the secret key does not match access key`,
      ),
    );
    expect(wrong.output).not.toContain("not-the-secret");

    const down = await spawnServer(
      scope,
      [
        "--path",
        path_,
        "--no-auth",
        "--listen",
        `127.0.0.1:${await freePort()}`,
        "--mirror",
        `s3://${bucket}/m`,
        "--mirror-s3-endpoint",
        "http://127.0.0.1:1",
      ],
      ceph.env,
    );
    expect(down.output()).toMatch(/"action":"mirror.unreachable".*connection refused by 127\.0\.0\.1:1/);
    expect((await request(down.url, "/r/?create=true", { method: "POST" })).status).toBe(200);
  });

  it.each([
    [["--mirror-deletes-after", "30d"], "--mirror-deletes-after needs --mirror"],
    [
      ["--mirror", "/tmp/x", "--mirror-deletes-after", "30 days"],
      "--mirror-deletes-after 30 days: expected a duration",
    ],
    [
      ["--mirror", "/tmp/x", "--mirror-s3-endpoint", "http://h"],
      "--mirror-s3-endpoint and --mirror-s3-profile need --mirror s3://",
    ],
    [["--mirror", "s3://A_B"], "--mirror s3://A_B: 'A_B' is not a valid bucket name"],
    [["--mirror", "PATH/mirror"], "is the primary storage, or inside it or around it"],
  ])("bad mirror flags %j", async (flags, message) => {
    const dir = await scope.tempDir("stowage-mirror-path-");
    const { status, output } = await runServerToExit([
      "--path",
      dir,
      "--no-auth",
      ...flags.map((flag) => flag.replace("PATH", dir)),
    ]);
    expect(status).toBe(1);
    expect(output).toContain(message);
  });
});
