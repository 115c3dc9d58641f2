import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { htpasswdFile } from "../support/htpasswd.js";
import { resticClient } from "../support/restic.js";
import { cephS3, listKeys, s3Client, testBucket } from "../support/s3.js";
import { freePort, type TestScope, useScope } from "../support/scope.js";
import { request, sha256 } from "./fixture.js";
import { type ServerProcess, spawnServer } from "./process.js";

const USERS: Array<[string, string]> = [
  ["alice", "alice-Secret-1"],
  ["bob", "bob-Secret-2"],
];

/** N servers of ours (separate processes) on one bucket, append-only, private repos, users made by `htpasswd -B`. */
async function instances(scope: TestScope, count: number, extra: string[] = []) {
  const ceph = cephS3();
  const client = s3Client(ceph);
  const bucket = testBucket(scope, client);
  const dir = await scope.tempDir("stowage-s3-instances-");
  const htpasswd = await htpasswdFile(
    path.join(dir, "htpasswd"),
    USERS.map(([user, password]) => [user, password, { bcrypt: 5 }]),
  );
  const servers: ServerProcess[] = [];
  for (let index = 0; index < count; index++) {
    const port = await freePort();
    servers.push(
      await spawnServer(
        scope,
        [
          "--storage",
          `s3://${bucket}/backups`,
          "--s3-endpoint",
          ceph.endpoint,
          "--path",
          path.join(dir, `server-${index}`),
          "--listen",
          `127.0.0.1:${port}`,
          "--htpasswd-file",
          htpasswd,
          "--append-only",
          "--private-repos",
          "--instances",
          String(count),
          ...extra,
        ],
        ceph.env,
      ),
    );
  }
  return { ceph, client, bucket, servers };
}

/** The URL restic gets for a repository on one server, credentials included. */
function repoUrl(server: ServerProcess, [user, password]: [string, string], repo: string): string {
  const url = new URL(server.url);
  return `rest:http://${user}:${password}@${url.host}/${user}/${repo}/`;
}

/** A tree of files made with the shell's own tools: some random data, some small files, a symlink. */
async function sourceTree(scope: TestScope, seed: number): Promise<string> {
  const dir = await scope.tempDir("stowage-s3-source-");
  await run("sh", [
    "-c",
    [
      `cd ${dir}`,
      `head -c ${3_000_000 + seed * 100_000} /dev/urandom > big.bin`,
      "mkdir -p small/a small/b",
      `for i in $(seq 1 40); do head -c $((i * 97)) /dev/urandom > small/a/f$i; echo ${seed}-$i > small/b/t$i; done`,
      "ln -s big.bin link",
    ].join(" && "),
  ]);
  return dir;
}

describe("rest-server: several instances on one S3 bucket (Ceph RGW)", () => {
  const scope = useScope();

  it("serves 6 restic clients spread over 3 instances; append-only holds on every one", async () => {
    const { servers } = await instances(scope, 3);
    const clients = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const user = USERS[i % 2] as [string, string];
        const repo = `host${i}`;
        // Each client's repository through its own server for the backup, another for the checks.
        const via = (offset: number) => repoUrl(servers[(i + offset) % 3] as ServerProcess, user, repo);
        return {
          source: await sourceTree(scope, i),
          backup: await resticClient(scope, via(0), { password: `repo-${i}` }),
          check: await resticClient(scope, via(1), { password: `repo-${i}` }),
          restore: await resticClient(scope, via(2), { password: `repo-${i}` }),
        };
      }),
    );
    await Promise.all(
      clients.map(async ({ source, backup }) => {
        await backup.run(["init"]);
        await backup.run(["backup", source]);
      }),
    );
    await Promise.all(
      clients.map(async ({ source, check, restore }) => {
        await check.run(["check", "--read-data"]);
        const target = await scope.tempDir("stowage-s3-restore-");
        await restore.run(["restore", "latest", "--target", target]);
        const diff = await run("diff", ["-r", "--no-dereference", source, path.join(target, source)], {
          okStatuses: [0, 1],
        });
        expect(diff.stdout).toBe("");
      }),
    );
    // Append-only: restic's forget --prune is refused (restic retries each refused delete for about
    // 45 s, so once), and a delete of a snapshot file is refused on every instance; the
    // repository stays whole.
    const alice = USERS[0] as [string, string];
    const restic = await resticClient(scope, repoUrl(servers[0] as ServerProcess, alice, "host0"), {
      password: "repo-0",
    });
    const [snapshot] = await restic.json<Array<{ id: string }>>(["snapshots"]);
    const forget = await restic.run(["forget", "--prune", snapshot?.id ?? ""], { okStatuses: [0, 1, 3] });
    expect(forget.status).not.toBe(0);
    for (const [index, server] of servers.entries()) {
      const deleted = await request(server.url, `/alice/host0/snapshots/${snapshot?.id}`, {
        method: "DELETE",
        auth: alice,
      });
      expect(deleted.status, `instance ${index}`).toBe(403);
    }
    await restic.run(["check", "--read-data"]);
    expect(await restic.json<unknown[]>(["snapshots"])).toHaveLength(1);
  });

  it("stores a blob uploaded twice at once through two instances once, and a corrupt upload not at all", async () => {
    const { servers, client, bucket } = await instances(scope, 2);
    const alice = USERS[0] as [string, string];
    const [a, b] = servers as [ServerProcess, ServerProcess];
    expect((await request(a.url, "/alice/r/?create=true", { method: "POST", auth: alice })).status).toBe(200);
    const blob = Buffer.alloc(8 * 1024 * 1024, 7);
    const id = sha256(blob);
    const both = await Promise.all(
      [a, b].map((server) =>
        request(server.url, `/alice/r/data/${id}`, { method: "POST", body: blob, auth: alice }),
      ),
    );
    expect(both.map((reply) => reply.status)).toEqual([200, 200]);
    const stored = (await listKeys(client, bucket, "backups/alice/r/data/")).map((k) => [k.key, k.size]);
    expect(stored).toEqual([[`backups/alice/r/data/${id.slice(0, 2)}/${id}`, blob.length]]);
    expect((await request(b.url, `/alice/r/data/${id}`, { auth: alice })).body.equals(blob)).toBe(true);

    const evil = Buffer.alloc(1024 * 1024, 9);
    const wrongName = sha256("something else");
    const refused = await request(a.url, `/alice/r/data/${wrongName}`, {
      method: "POST",
      body: evil,
      auth: alice,
    });
    expect(refused.status).toBe(400);
    expect(await listKeys(client, bucket, `backups/alice/r/data/${wrongName.slice(0, 2)}/`)).toEqual([]);
    expect((await request(b.url, `/alice/r/data/${wrongName}`, { method: "HEAD", auth: alice })).status).toBe(
      404,
    );
  });
});
