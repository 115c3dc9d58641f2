import { cephS3 } from "../support/s3.js";
import { freePort, type TestScope } from "../support/scope.js";
import { type ServerProcess, spawnServer } from "./process.js";

/**
 * Our server (--no-auth) on `s3://bucket/prefix` at an endpoint of the test host's Ceph, with its
 * credentials (and `env` besides).
 */
export async function spawnS3Server(
  scope: TestScope,
  bucket: string,
  prefix: string,
  endpoint: string,
  options: { extra?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<ServerProcess> {
  return spawnServer(
    scope,
    [
      "--storage",
      `s3://${bucket}/${prefix}`,
      "--s3-endpoint",
      endpoint,
      "--no-auth",
      "--path",
      await scope.tempDir("stowage-s3-config-"),
      "--listen",
      `127.0.0.1:${await freePort()}`,
      ...(options.extra ?? []),
    ],
    { ...cephS3().env, ...options.env },
  );
}
