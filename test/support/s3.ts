import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import https from "node:https";
import path from "node:path";
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import type { TestScope } from "./scope.js";
import { uniqueId } from "./scope.js";
import { selfSignedCert } from "./tls.js";

/** Where scripts/setup-ceph.sh (run by setup-host.sh) leaves the endpoint and the test user's keys. */
const ENV_FILE = `${process.env.STOWAGE_CEPH_DIR ?? "/var/lib/stowage-ceph"}/s3.env`;

export interface CephS3 {
  endpoint: string;
  /** AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, CEPH_CONF: for restic's s3: and our server. */
  env: Record<string, string>;
}

/** The single-node Ceph RGW of the test host (read once). */
export function cephS3(): CephS3 {
  let text: string;
  try {
    text = readFileSync(ENV_FILE, "utf8");
  } catch {
    throw new Error(`no Ceph S3 endpoint: ${ENV_FILE} is missing; run 'npm run setup-host' as root`);
  }
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const equals = line.indexOf("=");
    if (equals > 0) env[line.slice(0, equals)] = line.slice(equals + 1);
  }
  const endpoint = env.S3_ENDPOINT;
  if (!endpoint) throw new Error(`${ENV_FILE} names no S3_ENDPOINT`);
  delete env.S3_ENDPOINT;
  return { endpoint, env };
}

/** An SDK client of our own for the tests' checks (listing what is stored, planting foreign keys). */
export function s3Client(ceph: CephS3 = cephS3()): S3Client {
  return new S3Client({
    endpoint: ceph.endpoint,
    forcePathStyle: true,
    region: ceph.env.AWS_REGION ?? "us-east-1",
    credentials: {
      accessKeyId: ceph.env.AWS_ACCESS_KEY_ID as string,
      secretAccessKey: ceph.env.AWS_SECRET_ACCESS_KEY as string,
    },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

export async function listKeys(
  client: S3Client,
  bucket: string,
  prefix = "",
): Promise<Array<{ key: string; size: number }>> {
  const keys: Array<{ key: string; size: number }> = [];
  let token: string | undefined;
  do {
    const page: ListObjectsV2CommandOutput = await client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix,
        ...(token ? { ContinuationToken: token } : {}),
      }),
    );
    for (const object of page.Contents ?? []) keys.push({ key: object.Key ?? "", size: object.Size ?? 0 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

export async function putKey(
  client: S3Client,
  bucket: string,
  key: string,
  body: string | Buffer,
): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

/**
 * A bucket name of this test's own (RGW: 3-63 lowercase characters); emptied and deleted when the
 * scope ends, whoever made it (our server creates a missing bucket; restic's s3: init does too).
 */
export function testBucket(scope: TestScope, client: S3Client = s3Client()): string {
  const bucket = uniqueId("stowage").toLowerCase();
  scope.defer(`delete bucket ${bucket}`, async () => {
    for (;;) {
      const keys = await listKeys(client, bucket).catch(() => []);
      if (keys.length === 0) break;
      // One by one, 16 at a time (RGW 16 wants Content-MD5 on DeleteObjects, which the SDK no longer sends).
      let next = 0;
      const worker = async () => {
        for (let index = next++; index < keys.length; index = next++)
          await client.send(
            new DeleteObjectCommand({ Bucket: bucket, Key: (keys[index] as { key: string }).key }),
          );
      };
      await Promise.all(Array.from({ length: 16 }, worker));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch((error: { name?: string }) => {
      if (error.name !== "NoSuchBucket") throw error;
    });
  });
  return bucket;
}

export interface OwnGateway {
  endpoint: string;
  /** With TLS: the PEM certificate a client must trust (NODE_EXTRA_CA_CERTS). */
  caFile?: string;
  /** Stop it (SIGTERM, then SIGKILL after 10 s) and start it again on the same port. */
  restart(downMs?: number): Promise<void>;
  /** SIGSTOP: it keeps its connections and answers nothing (a hung storage). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

/**
 * A radosgw of this test's own in front of the shared cluster (another port, its own data dir):
 * a test may stop and restart it without disturbing the other tests' gateway.
 */
export async function ownGateway(
  scope: TestScope,
  port: number,
  options: { tls?: boolean } = {},
): Promise<OwnGateway> {
  const ceph = cephS3();
  const dir = await scope.tempDir("stowage-rgw-");
  // TLS: key and certificate in one file, as radosgw's beast takes them.
  const cert = options.tls ? await selfSignedCert(dir, "rgw") : undefined;
  const caFile = cert?.cert;
  if (cert)
    await writeFile(path.join(dir, "both.pem"), readFileSync(cert.key) + readFileSync(cert.cert, "utf8"));
  // By name with TLS, so that the certificate's name is checked (and sent as SNI).
  const endpoint = caFile ? `https://localhost:${port}` : `http://127.0.0.1:${port}`;
  const frontend = caFile
    ? `beast ssl_endpoint=127.0.0.1:${port} ssl_certificate=${path.join(dir, "both.pem")}`
    : `beast endpoint=127.0.0.1:${port}`;
  const ca = caFile ? readFileSync(caFile) : undefined;
  const statusOf = (): Promise<number> =>
    new Promise((resolve) => {
      const req = https.get(`${endpoint}/`, { ca, timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", () => resolve(0));
      req.on("timeout", () => req.destroy());
    });
  let child: ChildProcess | undefined;
  const up = async () => {
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      const status = caFile
        ? await statusOf()
        : await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(1000) })
            .then((r) => r.status)
            .catch(() => 0);
      if (status === 200) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`radosgw on ${endpoint} did not answer within 30 s`);
  };
  const start = async () => {
    child = spawn(
      "radosgw",
      [
        "-n",
        `client.rgw.${path.basename(dir).replace(/[^a-zA-Z0-9]/g, "")}`,
        "-f",
        "--rgw-frontends",
        frontend,
        "--ms-mon-client-mode",
        "secure crc",
        "--auth-client-required",
        "none",
        "--rgw-data",
        dir,
        "--admin-socket",
        path.join(dir, "asok"),
        "--log-file",
        path.join(dir, "log"),
      ],
      { env: { ...process.env, CEPH_CONF: ceph.env.CEPH_CONF }, stdio: "ignore" },
    );
    await up();
  };
  const stop = async () => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, "exit");
    running.kill("SIGTERM");
    const timer = setTimeout(() => running.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  scope.defer(`stop radosgw on ${endpoint}`, async () => {
    child?.kill("SIGCONT");
    await stop();
  });
  return {
    endpoint,
    ...(caFile ? { caFile } : {}),
    pause() {
      child?.kill("SIGSTOP");
    },
    resume() {
      child?.kill("SIGCONT");
    },
    async restart(downMs = 0) {
      await stop();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await start();
    },
  };
}
