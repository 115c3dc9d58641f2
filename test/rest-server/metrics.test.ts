import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { htpasswdFile } from "../support/htpasswd.js";
import { useScope } from "../support/scope.js";
import { createRepo, request, sha256, startTestServer } from "./fixture.js";

describe("rest-server metrics and access log", () => {
  const scope = useScope();

  it("exposes the Go server's counters plus repository size and last snapshot time", async () => {
    const { url } = await startTestServer(scope, { prometheus: true });
    await createRepo(url, "/alice/");
    const data = Buffer.alloc(1234, 9);
    const snapshot = "snapshot";
    await request(url, `/alice/data/${sha256(data)}`, { method: "POST", body: data });
    await request(url, `/alice/snapshots/${sha256(snapshot)}`, { method: "POST", body: snapshot });
    await request(url, `/alice/data/${sha256(data)}`);
    await request(url, `/alice/snapshots/${sha256(snapshot)}`, { method: "DELETE" });
    const { status, text, headers } = await request(url, "/metrics");
    expect(status).toBe(200);
    expect(headers["content-type"]).toContain("text/plain");
    const labels = '{user="",repo="/alice",type="data"}';
    expect(text).toContain(`rest_server_blob_write_total${labels} 1`);
    expect(text).toContain(`rest_server_blob_write_bytes_total${labels} 1234`);
    expect(text).toContain(`rest_server_blob_read_total${labels} 1`);
    expect(text).toContain(`rest_server_blob_read_bytes_total${labels} 1234`);
    expect(text).toContain('rest_server_blob_delete_total{user="",repo="/alice",type="snapshots"} 1');
    expect(text).toContain('rest_server_blob_delete_bytes_total{user="",repo="/alice",type="snapshots"} 8');
    expect(text).toContain('rest_server_repo_size_bytes{repo="/alice"} 1234');
    expect(text).toContain("process_resident_memory_bytes");

    await request(url, `/alice/snapshots/${sha256(snapshot)}`, { method: "POST", body: snapshot });
    const after = (await request(url, "/metrics")).text;
    const match = /rest_server_repo_last_snapshot_timestamp_seconds\{repo="\/alice"\} (\S+)/.exec(after);
    expect(Math.abs(Number(match?.[1]) - Date.now() / 1000)).toBeLessThan(60);
  });

  it("with --private-repos only the user 'metrics' reads /metrics, unless --prometheus-no-auth", async () => {
    const root = await scope.tempDir("stowage-rest-");
    await htpasswdFile(path.join(root, ".htpasswd"), [
      ["metrics", "m", { bcrypt: 4 }],
      ["alice", "a", { bcrypt: 4 }],
    ]);
    const { url } = await startTestServer(scope, {
      path: root,
      noAuth: false,
      prometheus: true,
      privateRepos: true,
    });
    expect((await request(url, "/metrics")).status).toBe(401);
    expect((await request(url, "/metrics", { auth: ["alice", "a"] })).status).toBe(401);
    expect((await request(url, "/metrics", { auth: ["metrics", "m"] })).status).toBe(200);
    const open = await startTestServer(scope, {
      path: root,
      noAuth: false,
      prometheus: true,
      prometheusNoAuth: true,
    });
    expect((await request(open.url, "/metrics")).status).toBe(200);
  });

  it("writes a Combined Log Format access log with --log", async () => {
    const log = path.join(await scope.tempDir(), "access.log");
    const { url } = await startTestServer(scope, { log });
    await createRepo(url, "/");
    await request(url, "/keys/", { headers: { "User-Agent": "restic/0.14.0" } });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const lines = (await readFile(log, "utf8")).trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(
      /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/keys\/ HTTP\/1\.1" 200 2 "-" "restic\/0\.14\.0"$/,
    );
  });
});
