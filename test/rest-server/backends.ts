import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ServerOptions } from "../../src/rest-server/server.js";
import { cephS3, listKeys, putKey, s3Client, testBucket } from "../support/s3.js";
import type { TestScope } from "../support/scope.js";
import { startTestServer, type TestServer } from "./fixture.js";

/** A server under test on one kind of storage, with ways to look at (and plant into) what it stores. */
export interface BackendServer extends TestServer {
  /** Every stored object (files under --path, or keys under the bucket prefix), relative, sorted. */
  objects(): Promise<string[]>;
  /** Store a foreign object directly, bypassing the server (a leftover temp file, a stray name). */
  plant(relative: string, content: string): Promise<void>;
}

export interface TestBackend {
  kind: "fs" | "s3";
  /** Our server in this process; `path` still holds its own files (htpasswd, TLS keys). */
  start(scope: TestScope, overrides?: Partial<ServerOptions>): Promise<BackendServer>;
}

/** Files under a directory, relative, sorted; the server's own dotfiles at the top (.htpasswd) left out. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .filter((name) => !(name.startsWith(".") && !name.includes("/")))
    .sort();
}

export const fsBackend: TestBackend = {
  kind: "fs",
  async start(scope, overrides = {}) {
    const server = await startTestServer(scope, overrides);
    return {
      ...server,
      objects: () => filesUnder(server.root),
      async plant(relative, content) {
        await mkdir(path.dirname(path.join(server.root, relative)), { recursive: true });
        await writeFile(path.join(server.root, relative), content);
      },
    };
  },
};

/**
 * A fresh bucket on the test host's Ceph RGW (made by the server itself at start-up), under a
 * prefix, as `--storage s3://BUCKET/PREFIX --s3-endpoint URL` with the test user's keys.
 */
export const s3Backend: TestBackend = {
  kind: "s3",
  async start(scope, overrides = {}) {
    const ceph = cephS3();
    Object.assign(process.env, ceph.env);
    const client = s3Client(ceph);
    const bucket = testBucket(scope, client);
    const prefix = "repos";
    const server = await startTestServer(scope, {
      storage: `s3://${bucket}/${prefix}`,
      s3Endpoint: ceph.endpoint,
      ...overrides,
    });
    return {
      ...server,
      async objects() {
        const keys = await listKeys(client, bucket, `${prefix}/`);
        return keys
          .map(({ key }) => key.slice(prefix.length + 1))
          .filter((key) => !key.endsWith(".rest-server-repository"))
          .sort();
      },
      plant: (relative, content) => putKey(client, bucket, `${prefix}/${relative}`, content),
    };
  },
};
