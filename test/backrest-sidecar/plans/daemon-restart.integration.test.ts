import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../../src/system/exec.js";
import { readMountinfo } from "../../../src/system/mountinfo.js";
import { buildRootfs } from "../../support/docker.js";
import { type TestScope, useScope } from "../../support/scope.js";
import { CLI } from "../harness.js";

/**
 * A Docker engine of the test's own (its own socket, data and exec roots, no networking), so it
 * can be stopped and started again without disturbing the host's engine or other tests.
 */
async function privateEngine(scope: TestScope) {
  const dir = await scope.tempDir("stowage-dockerd-");
  const socket = path.join(dir, "docker.sock");
  // A bridge of its own: with --bridge=none dockerd deletes the host engine's docker0.
  const bridge = `stw${randomBytes(4).toString("hex")}`;
  await run("ip", ["link", "add", bridge, "type", "bridge"]);
  scope.defer(`delete bridge ${bridge}`, () => run("ip", ["link", "del", bridge]));
  let daemon: ChildProcess | undefined;
  const start = async () => {
    daemon = spawn(
      "dockerd",
      [
        "--host",
        `unix://${socket}`,
        "--data-root",
        path.join(dir, "data"),
        "--exec-root",
        path.join(dir, "exec"),
        "--pidfile",
        path.join(dir, "dockerd.pid"),
        "--bridge",
        bridge,
        "--iptables=false",
        "--ip6tables=false",
      ],
      { stdio: "ignore" },
    );
    for (let i = 0; i < 300; i++) {
      const info = await run("docker", ["-H", `unix://${socket}`, "info"], { okStatuses: [0, 1] });
      if (info.status === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error("the private dockerd did not start");
  };
  const stop = async () => {
    if (!daemon || daemon.exitCode !== null) return;
    daemon.kill("SIGTERM");
    await once(daemon, "exit");
  };
  scope.defer("stop the private dockerd and unmount what it left", async () => {
    await stop();
    const mounts = (await readMountinfo()).filter((m) => m.mountPoint.startsWith(`${dir}/`)).reverse();
    for (const mount of mounts) await run("umount", ["--lazy", mount.mountPoint], { okStatuses: [0, 32] });
  });
  await start();
  return {
    socket,
    start,
    stop,
    docker: (args: string[]) => run("docker", ["-H", `unix://${socket}`, ...args]),
  };
}

describe("backrest-sidecar daemon across a Docker engine restart", () => {
  const scope = useScope();

  it("keeps running, reconnects, and picks up containers created after the engine came back", {
    timeout: 300_000,
  }, async () => {
    const engine = await privateEngine(scope);
    const rootfs = await scope.tempDir("stowage-rootfs-");
    await buildRootfs(rootfs);
    await run("sh", [
      "-c",
      'tar -C "$0" -c . | docker -H "unix://$1" import - stowage-test/busybox:1',
      rootfs,
      engine.socket,
    ]);
    const dir = await scope.tempDir("stowage-sidecar-restart-");
    await mkdir(path.join(dir, "srv"));
    const config = path.join(dir, "config.json");
    await writeFile(
      config,
      JSON.stringify({ repos: [{ id: "default", type: "local", url: "/repo" }], plans: [] }),
    );
    const create = (name: string) =>
      engine.docker([
        "create",
        "--name",
        name,
        "--label",
        "backrest.enable=true",
        "-v",
        `${dir}/srv:/srv`,
        "stowage-test/busybox:1",
        "sleep",
        "1",
      ]);
    const daemon = spawn(
      process.execPath,
      [
        CLI,
        "daemon",
        "--config",
        config,
        "--docker-sock",
        engine.socket,
        "--with-events",
        "--interval",
        "1h",
      ],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let log = "";
    daemon.stderr.on("data", (c: Buffer) => {
      log += c.toString();
    });
    scope.defer("stop the sidecar", async () => {
      if (daemon.exitCode === null) {
        daemon.kill("SIGKILL");
        await once(daemon, "exit");
      }
    });
    const planAppears = async (id: string, withinMs: number) => {
      const deadline = Date.now() + withinMs;
      while (!(await readFile(config, "utf8")).includes(id)) {
        if (Date.now() > deadline) throw new Error(`plan ${id} not written in ${withinMs} ms:\n${log}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    await create("before-restart");
    await planAppears("backrest_sidecar_before_restart", 5_000);

    await engine.stop();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(daemon.exitCode).toBeNull();
    expect(log).toContain("events.lost");
    await engine.start();
    await create("after-restart");
    // Reconnecting backs off up to a few seconds, then reconciles.
    await planAppears("backrest_sidecar_after_restart", 20_000);
    expect(daemon.exitCode).toBeNull();
    daemon.kill("SIGTERM");
    expect((await once(daemon, "exit"))[0]).toBe(0);
    await engine.docker(["rm", "-f", "before-restart", "after-restart"]);
  });
});
