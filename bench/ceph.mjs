// The Ceph RGW of scripts/setup-ceph.sh, for the S3 benchmarks.
import { readFileSync } from "node:fs";
import { DeleteBucketCommand, DeleteObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";

const ENV_FILE = `${process.env.STOWAGE_CEPH_DIR ?? "/var/lib/stowage-ceph"}/s3.env`;

/** The endpoint, the environment with its credentials (for restic and our server), and a client. */
export function cephS3() {
  const env = Object.fromEntries(
    readFileSync(ENV_FILE, "utf8")
      .split("\n")
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
  const { S3_ENDPOINT: endpoint, ...credentials } = env;
  const client = new S3Client({
    endpoint,
    forcePathStyle: true,
    region: credentials.AWS_REGION,
    credentials: {
      accessKeyId: credentials.AWS_ACCESS_KEY_ID,
      secretAccessKey: credentials.AWS_SECRET_ACCESS_KEY,
    },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  return { endpoint, credentials, client };
}

/** Delete every object of a bucket (16 at a time), then the bucket. */
export async function emptyBucket(client, bucket) {
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket })).catch(() => undefined);
    const keys = (page?.Contents ?? []).map((object) => object.Key);
    if (keys.length === 0) break;
    for (let i = 0; i < keys.length; i += 16)
      await Promise.all(
        keys.slice(i, i + 16).map((Key) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key }))),
      );
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
}
