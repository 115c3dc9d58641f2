import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { resticClient } from "../support/restic.js";
import { freePort, useScope } from "../support/scope.js";
import { mountTmpfs } from "../support/tmpfs.js";
import { createRepo, request } from "./fixture.js";
import { runServerToExit, spawnServer, waitForOutput } from "./process.js";

describe("rest-server never dies of its access log", () => {
  const scope = useScope();

  it("an access log it cannot open fails the start with one line, before listening", async () => {
    const root = await scope.tempDir("stowage-rest-log-");
    const port = await freePort();
    const log = path.join(root, "no-such-dir", "access.log");
    const { status, output } = await runServerToExit([
      "--path",
      root,
      "--listen",
      `127.0.0.1:${port}`,
      "--no-auth",
      "--log",
      log,
    ]);
    expect(status).toBe(1);
    expect(output).toContain(`rest-server: --log ${log}: cannot open it for appending`);
    expect(output).not.toContain("listening");
    expect(output).not.toMatch(/Unhandled|at .*\.js:\d+/);
  });

  it("a log disk that fills up: one warning, the log is dropped, restic's backup goes on and checks clean", async () => {
    const root = await scope.tempDir("stowage-rest-log-");
    const logDir = path.join(root, "logs");
    await mountTmpfs(scope, logDir, { mountOptions: ["size=64k"] });
    const log = path.join(logDir, "access.log");
    // Fill the log's filesystem (dd stops at ENOSPC), then leave room for nothing.
    await run("dd", ["if=/dev/zero", `of=${path.join(logDir, "filler")}`, "bs=4k"], { okStatuses: [0, 1] });
    await writeFile(log, "", { flag: "a" }).catch(() => {});
    const data = path.join(root, "data");
    const port = await freePort();
    const server = await spawnServer(scope, [
      "--path",
      data,
      "--listen",
      `127.0.0.1:${port}`,
      "--no-auth",
      "--log",
      log,
    ]);
    const source = path.join(root, "source");
    await mkdir(source);
    await writeFile(path.join(source, "payload"), randomBytes(3 * 1024 * 1024));
    const restic = await resticClient(scope, `rest:${server.url}/repo/`);
    await restic.run(["init"]);
    await restic.run(["backup", source]);
    await restic.run(["check", "--read-data"]);
    await waitForOutput(server, /"action":"access-log.failed"/);
    expect(server.output().match(/access-log.failed/g)).toHaveLength(1);
    expect(server.output()).not.toMatch(/"level":"(error|fatal)"/);
    expect(await server.stop()).toBe(0);
  });
});

describe("rest-server: smaller things that must not lose data", () => {
  const scope = useScope();

  it("--listen unix:PATH removes a stale socket but never a file that is not one", async () => {
    const root = await scope.tempDir("stowage-rest-sock-");
    const file = path.join(root, "precious");
    await writeFile(file, "not a socket\n");
    const { status, output } = await runServerToExit([
      "--path",
      root,
      "--listen",
      `unix:${file}`,
      "--no-auth",
    ]);
    expect(status).toBe(1);
    expect(output).toContain(`${file} exists and is not a socket; not removing it`);
    expect(await readFile(file, "utf8")).toBe("not a socket\n");
    // A socket left by a killed server is taken over.
    const socket = path.join(root, "rest.sock");
    const first = await spawnServer(scope, ["--path", root, "--listen", `unix:${socket}`, "--no-auth"]);
    expect(await first.stop("SIGKILL")).toBe("SIGKILL");
    const second = await spawnServer(scope, ["--path", root, "--listen", `unix:${socket}`, "--no-auth"]);
    const stopped = await second.stop();
    expect(stopped, second.output()).toBe(0);
  });

  it("a blob directory that cannot be read fails the listing (never a short list restic would trust)", async () => {
    const root = await scope.tempDir("stowage-rest-list-");
    const port = await freePort();
    await spawnServer(scope, ["--path", root, "--listen", `127.0.0.1:${port}`, "--no-auth"]);
    const url = `http://127.0.0.1:${port}`;
    await createRepo(url, "/repo/");
    const blob = randomBytes(100);
    const id = (await run("sh", ["-c", "sha256sum | cut -d' ' -f1"], { input: blob })).stdout.trim();
    expect((await request(url, `/repo/data/${id}`, { method: "POST", body: blob })).status).toBe(200);
    // Its data/XX made unreadable even for root: a symlink loop where the directory was.
    const sub = path.join(root, "repo", "data", id.slice(0, 2));
    await rm(sub, { recursive: true });
    await symlink(id.slice(0, 2), sub);
    const listing = await request(url, "/repo/data/", {
      headers: { Accept: "application/vnd.x.restic.rest.v2" },
    });
    expect(listing.status).toBe(500);
  });
});
