import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import tls from "node:tls";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { isMountPoint } from "../../src/system/mountinfo.js";
import { createLoopBtrfs } from "../support/btrfs.js";
import { htpasswd, htpasswdFile } from "../support/htpasswd.js";
import { resticClient } from "../support/restic.js";
import { freePort, useScope } from "../support/scope.js";
import { selfSignedCert } from "../support/tls.js";
import { mountTmpfs } from "../support/tmpfs.js";
import { createRepo, request, sha256 } from "./fixture.js";
import { CLI, runServerToExit, spawnServer, waitForOutput } from "./process.js";

async function filesNamed(dir: string, test: (name: string) => boolean): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && test(e.name)).map((e) => path.join(e.parentPath, e.name));
}

function certFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on("error", reject);
  });
}

describe("rest-server process lifecycle (real processes, mounts and restic)", () => {
  const scope = useScope();

  it("prints upstream's start line with the bound port (--listen :0), as restic's test harness waits for", async () => {
    const root = await scope.tempDir("stowage-rest-");
    const server = await spawnServer(scope, ["--path", root, "--listen", "127.0.0.1:0", "--no-auth"]);
    const line = await waitForOutput(server, /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d start server on (\S+)$/m);
    expect(line).toBe(new URL(server.url).host);
    expect(line).not.toMatch(/:0$/);
    const wildcard = await spawnServer(scope, ["--path", root, "--listen", ":0", "--no-auth"]);
    expect(await waitForOutput(wildcard, /start server on (\S+)$/m)).toMatch(/^\[::\]:\d+$|^0\.0\.0\.0:\d+$/);
  });

  it("survives kill -9 during many uploads: restic check is clean and no temp file is listed", async () => {
    const root = await scope.tempDir("stowage-rest-");
    const port = await freePort();
    const args = ["--path", root, "--listen", `127.0.0.1:${port}`, "--no-auth"];
    const first = await spawnServer(scope, args);
    const restic = await resticClient(scope, `rest:http://127.0.0.1:${port}/crash/`);
    await restic.run(["init"]);
    const source = path.join(await scope.tempDir(), "src");
    await mkdir(source);
    for (let i = 0; i < 40; i++) await writeFile(path.join(source, `f${i}`), randomBytes(512 * 1024));
    await restic.run(["backup", source]);

    // Many raw uploads in flight, then the server dies without warning.
    const blobs = Array.from({ length: 40 }, () => randomBytes(2 * 1024 * 1024));
    const uploads = blobs.map(
      (blob) =>
        new Promise<void>((resolve) => {
          const req = http.request({
            host: "127.0.0.1",
            port,
            method: "POST",
            path: `/crash/data/${sha256(blob)}`,
            headers: { "Content-Length": blob.length },
            agent: false,
          });
          req.on("error", () => resolve());
          req.on("response", (res) => res.resume().on("end", resolve));
          req.write(blob.subarray(0, blob.length / 2));
          setTimeout(() => req.end(blob.subarray(blob.length / 2)), 50);
        }),
    );
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(await first.stop("SIGKILL")).toBe("SIGKILL");
    await Promise.all(uploads);

    await spawnServer(scope, args);
    const data = JSON.parse((await request(`http://127.0.0.1:${port}`, "/crash/data/")).text) as string[];
    for (const name of data) expect(name).toMatch(/^[0-9a-f]{64}$/);
    // Every object under its final name is complete: its content hashes to its name.
    for (const file of await filesNamed(path.join(root, "crash", "data"), (n) => /^[0-9a-f]{64}$/.test(n))) {
      expect(
        createHash("sha256")
          .update(await readFile(file))
          .digest("hex"),
      ).toBe(path.basename(file));
    }
    await restic.run(["check", "--read-data"]);
  });

  it("answers 507 on a full disk and leaves no temp file", async () => {
    const root = await scope.tempDir("stowage-rest-");
    await mountTmpfs(scope, root, { mountOptions: ["size=1m"] });
    const port = await freePort();
    await spawnServer(scope, ["--path", root, "--listen", `127.0.0.1:${port}`, "--no-auth"]);
    const url = `http://127.0.0.1:${port}`;
    await createRepo(url, "/");
    const big = randomBytes(2 * 1024 * 1024);
    const reply = await request(url, `/data/${sha256(big)}`, { method: "POST", body: big });
    expect(reply.status).toBe(507);
    expect(await filesNamed(root, () => true)).toEqual([]);
  });

  it("finishes in-flight uploads on SIGTERM, then exits 0", async () => {
    const root = await scope.tempDir("stowage-rest-");
    const port = await freePort();
    const proc = await spawnServer(scope, ["--path", root, "--listen", `127.0.0.1:${port}`, "--no-auth"]);
    await createRepo(`http://127.0.0.1:${port}`, "/");
    const blob = randomBytes(1024 * 1024);
    const status = new Promise<number>((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port,
        method: "POST",
        path: `/data/${sha256(blob)}`,
        headers: { "Content-Length": blob.length },
      });
      req.on("response", (res) => resolve(res.statusCode ?? 0));
      req.on("error", reject);
      req.write(blob.subarray(0, 1000));
      setTimeout(() => req.end(blob.subarray(1000)), 500);
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const exit = proc.stop("SIGTERM");
    expect(await status).toBe(200);
    expect(await exit).toBe(0);
    const stored = await filesNamed(path.join(root, "data"), () => true);
    expect(stored.map((f) => path.basename(f))).toEqual([sha256(blob)]);
  });

  it("reloads its TLS certificate on SIGHUP", async () => {
    const dir = await scope.tempDir("stowage-tls-");
    const one = await selfSignedCert(dir, "one");
    const two = await selfSignedCert(dir, "two");
    const cert = path.join(dir, "server.crt");
    const key = path.join(dir, "server.key");
    await writeFile(cert, await readFile(one.cert));
    await writeFile(key, await readFile(one.key));
    const port = await freePort();
    const proc = await spawnServer(scope, [
      "--path",
      dir,
      "--listen",
      `127.0.0.1:${port}`,
      "--no-auth",
      "--tls",
      "--tls-cert",
      cert,
      "--tls-key",
      key,
    ]);
    const before = await certFingerprint(port);
    await writeFile(cert, await readFile(two.cert));
    await writeFile(key, await readFile(two.key));
    proc.child.kill("SIGHUP");
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = await certFingerprint(port);
    expect(after).not.toBe(before);
    expect(proc.output()).toContain("TLS certificate reloaded");
  });

  it("mounts a multi-device btrfs by UUID before serving, waits for it to appear, unmounts on SIGTERM", async () => {
    const fs = await createLoopBtrfs(scope, { devices: 2 });
    await run("umount", [fs.mountPoint]);
    // Detach the devices so the server has to wait for them to appear.
    const images: string[] = [];
    for (const device of fs.devices) {
      const info = JSON.parse((await run("losetup", ["--json", "--list", device])).stdout) as {
        loopdevices: Array<{ "back-file": string }>;
      };
      images.push(info.loopdevices[0]?.["back-file"] ?? "");
      await run("btrfs", ["device", "scan", "--forget", device], { okStatuses: [0, 1] });
      await run("losetup", ["--detach", device]);
    }
    const target = path.join(await scope.tempDir(), "disk");
    const port = await freePort();
    const serverPromise = spawnServer(
      scope,
      ["--path", path.join(target, "restic"), "--listen", `127.0.0.1:${port}`, "--no-auth"],
      { MNT_SOURCE: `UUID=${fs.uuid}`, MNT_TARGET: target, MNT_FSTYPE: "btrfs", MNT_DATA: "noatime" },
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await isMountPoint(target)).toBe(false);
    for (const [index, device] of fs.devices.entries()) await run("losetup", [device, images[index] ?? ""]);
    const proc = await serverPromise;
    expect(await isMountPoint(target)).toBe(true);
    const mounts = await readFile("/proc/self/mountinfo", "utf8");
    const line = mounts.split("\n").find((l) => l.split(" ")[4] === target) ?? "";
    expect(line).toContain(" - btrfs ");
    expect(line).toMatch(/noatime/);
    expect(proc.output()).toContain('"devices":["/dev/loop');

    const restic = await resticClient(scope, `rest:http://127.0.0.1:${port}/disk/`);
    await restic.run(["init"]);
    expect(await proc.stop("SIGTERM")).toBe(0);
    expect(await isMountPoint(target)).toBe(false);
    expect(proc.output()).toContain("disk unmounted");
  });

  it("serves on a socket passed by systemd socket activation, and re-reads htpasswd on SIGHUP", async () => {
    const root = await scope.tempDir("stowage-rest-");
    await htpasswdFile(path.join(root, ".htpasswd"), [["alice", "one", { bcrypt: 4 }]]);
    const port = await freePort();
    // systemd-socket-activate binds the socket and starts the server on the first connection, as fd 3.
    const activator = await spawnServer(scope, ["--path", root], {}, [
      "systemd-socket-activate",
      "--listen",
      `127.0.0.1:${port}`,
    ]);
    await waitForOutput(activator, /Listening on/);
    const url = `http://127.0.0.1:${port}`;
    expect((await request(url, "/?create=true", { method: "POST", auth: ["alice", "one"] })).status).toBe(
      200,
    );
    expect(activator.output()).toContain(`rest-server listening on http://127.0.0.1:${port}`);
    await htpasswd(path.join(root, ".htpasswd"), "alice", "two", { bcrypt: 4 });
    const serverPid = Number((await run("pgrep", ["-f", `${CLI} --path ${root}`])).stdout.trim());
    expect(serverPid).toBeGreaterThan(1);
    process.kill(serverPid, "SIGHUP");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await request(url, "/keys/", { auth: ["alice", "one"] })).status).toBe(401);
    expect((await request(url, "/keys/", { auth: ["alice", "two"] })).status).toBe(200);
  });

  it("exits 125 with a clear error when the disk cannot be mounted", async () => {
    const target = path.join(await scope.tempDir(), "disk");
    const { status, output } = await runServerToExit(
      ["--path", path.join(target, "restic"), "--listen", "127.0.0.1:0", "--no-auth", "--mount-timeout", "1"],
      { MNT_SOURCE: "/dev/stowage-no-such-disk", MNT_TARGET: target, MNT_FSTYPE: "ext4" },
    );
    expect(status).toBe(125);
    expect(output).toContain("device /dev/stowage-no-such-disk did not appear in time");
    expect(await isMountPoint(target)).toBe(false);
  });
});
