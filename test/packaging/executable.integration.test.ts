import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { ROOT } from "../support/debian.js";
import { htpasswdFile } from "../support/htpasswd.js";
import { resticClient } from "../support/restic.js";
import { freePort, type TestScope, useScope } from "../support/scope.js";

/** `make install` into a temp DESTDIR; returns the prefix on disk. */
async function installed(scope: TestScope): Promise<string> {
  const dest = await scope.tempDir("stowage-install-");
  await run("make", ["-C", ROOT, "install", `DESTDIR=${dest}`, "PREFIX=/usr/local"]);
  return path.join(dest, "usr/local");
}

/** Start a server command, wait for its address; the output so far and a stop function. */
async function startServer(scope: TestScope, argv: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(argv[0] as string, argv.slice(1), {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let output = "";
  child.stdout.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    output += c.toString();
  });
  scope.defer("stop the server", async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
  });
  return { child, output: () => output };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("the installed executable", () => {
  const scope = useScope();

  it("loads native bcrypt from beside itself with a noexec /tmp, and falls back to bcryptjs where nothing may be mapped executable", async () => {
    const prefix = await installed(scope);
    const data = await scope.tempDir("stowage-bcrypt-");
    await htpasswdFile(path.join(data, ".htpasswd"), [["alice", "alice-pw", { bcrypt: 5 }]]);
    const rest = path.join(prefix, "bin", "rest-server");
    // A private mount namespace where TMPDIR, /dev/shm and /run are noexec tmpfs.
    const tmp = path.join(await scope.tempDir("stowage-noexec-"), "tmp");
    await mkdir(tmp);
    const noexec = (command: string) =>
      [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        `mount -t tmpfs -o noexec t ${tmp} && mount -t tmpfs -o noexec t /dev/shm && mount -t tmpfs -o noexec t /run && TMPDIR=${tmp} exec ${command}`,
      ] as string[];
    for (const variant of ["beside", "fallback"] as const) {
      if (variant === "fallback") await rm(path.join(prefix, "lib/stowage/bcrypt.node"));
      const port = await freePort();
      const server = await startServer(scope, noexec(`${rest} --path ${data} --listen 127.0.0.1:${port}`));
      await until(() => server.output().includes("listening on"), "rest-server");
      if (variant === "beside") expect(server.output()).not.toContain("bcryptjs");
      else expect(server.output()).toContain("native bcrypt unavailable; using bcryptjs (slower)");
      const restic = await resticClient(scope, `rest:http://alice:alice-pw@127.0.0.1:${port}/alice/`);
      await restic.run(["init"]);
      const wrong = await resticClient(scope, `rest:http://alice:nope@127.0.0.1:${port}/alice/`);
      expect((await wrong.run(["snapshots"], { okStatuses: [1] })).stderr).toMatch(/401|unauthorized/i);
      server.child.kill("SIGTERM");
      await once(server.child, "exit");
      await rm(path.join(data, "alice"), { recursive: true });
    }
  });

  it("serves under systemd-socket-activate as rest-server.socket would start it", async () => {
    const prefix = await installed(scope);
    const data = await scope.tempDir("stowage-socket-");
    const port = await freePort();
    const activator = await startServer(scope, [
      "systemd-socket-activate",
      "--listen",
      `127.0.0.1:${port}`,
      path.join(prefix, "bin", "rest-server"),
      "--path",
      data,
      "--no-auth",
    ]);
    await until(() => activator.output().includes("Listening on"), "the socket");
    const restic = await resticClient(scope, `rest:http://127.0.0.1:${port}/activated/`);
    await restic.run(["init"]);
    expect(activator.output()).toContain(`rest-server listening on http://127.0.0.1:${port}`);
    expect(await readdir(path.join(data, "activated"))).toContain("config");
  });

  it("its systemd units pass systemd-analyze verify (and a broken one does not)", async () => {
    const prefix = await installed(scope);
    const units = path.join(ROOT, "deploy", "systemd");
    const checked = path.join(await scope.tempDir("stowage-units-"), "units");
    await mkdir(checked);
    const names = (await readdir(units)).filter((name) => /\.(service|socket|timer)$/.test(name));
    expect(names.sort()).toEqual([
      "backrest-sidecar-backup.service",
      "backrest-sidecar-backup.timer",
      "backrest-sidecar.service",
      "rest-server.service",
      "rest-server.socket",
      "statecraft-backup@.service",
      "statecraft-backup@.timer",
    ]);
    for (const name of names) {
      const text = await readFile(path.join(units, name), "utf8");
      // Units name the installed paths (PREFIX=/usr/local); verified against this test's install.
      for (const exec of text.matchAll(/^Exec\w+=(\S+)/gm))
        expect(exec[1]).toMatch(/^\/(usr\/local\/bin|bin)\//);
      await writeFile(path.join(checked, name), text.replaceAll("/usr/local/bin/", `${prefix}/bin/`));
    }
    for (const name of names) {
      const result = await run("systemd-analyze", ["verify", name], { cwd: checked, okStatuses: [0, 1] });
      expect([result.status, result.stderr], name).toEqual([0, ""]);
    }
    await writeFile(
      path.join(checked, "broken.service"),
      "[Service]\nExecStart=/nonexistent/stowage-command\n",
    );
    const broken = await run("systemd-analyze", ["verify", "broken.service"], {
      cwd: checked,
      okStatuses: [0, 1],
    });
    expect(broken.status).toBe(1);
  });
});
