import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useScope } from "../support/scope.js";
import { fsBackend } from "./backends.js";
import { createRepo, request, sha256, startTestServer } from "./fixture.js";
import { describeProtocol, TRAVERSALS } from "./protocol-suite.js";

describeProtocol(fsBackend);

describe("rest-server protocol, directory storage only", () => {
  const scope = useScope();

  it("creates every directory of a repository, 0700", async () => {
    const { url, root } = await startTestServer(scope);
    await createRepo(url, "/alice/laptop/");
    const dirs = await readdir(path.join(root, "alice", "laptop"));
    expect(dirs.sort()).toEqual(["data", "index", "keys", "locks", "snapshots"]);
    expect(await readdir(path.join(root, "alice", "laptop", "data"))).toHaveLength(256);
    expect((await stat(path.join(root, "alice", "laptop", "data", "ff"))).mode & 0o777).toBe(0o700);
  });

  it("lets nothing escape the root", async () => {
    // The root inside a directory of this test's own, so that nothing else writes beside it.
    const parent = await scope.tempDir("stowage-rest-parent-");
    const { url, root } = await startTestServer(scope, { path: path.join(parent, "root") });
    const before = await readdir(parent);
    for (const evil of TRAVERSALS)
      expect((await request(url, evil, { method: "POST" })).status, evil).toBe(400);
    expect(await readdir(parent)).toEqual(before);
    expect(await readdir(root)).toEqual([]);
  });

  it("creates group-accessible repositories when asked", async () => {
    const { url, root } = await startTestServer(scope, { groupAccessibleRepos: true });
    await createRepo(url, "/g/");
    const body = "k";
    await request(url, `/g/keys/${sha256(body)}`, { method: "POST", body });
    expect((await stat(path.join(root, "g", "data", "00"))).mode & 0o777).toBe(0o770);
    expect((await stat(path.join(root, "g", "keys", sha256(body)))).mode & 0o777).toBe(0o660);
  });

  it("serves over a unix socket", async () => {
    const dir = await scope.tempDir();
    const socketPath = path.join(dir, "rest.sock");
    await startTestServer(scope, { listen: `unix:${socketPath}` });
    const reply = await request("http://localhost", "/?create=true", { method: "POST", socketPath });
    expect(reply.status).toBe(200);
    const list = await request("http://localhost", "/keys/", { socketPath });
    expect(list.text).toBe("[]");
  });
});
