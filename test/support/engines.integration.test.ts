import { existsSync } from "node:fs";
import { readdir, readFile, readlink } from "node:fs/promises";
import Docker from "dockerode";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { readMountinfo } from "../../src/system/mountinfo.js";
import { dockerClient, TEST_IMAGE } from "./docker.js";
import { type ExtraEngine, startEngine } from "./engines.js";
import { useScope } from "./scope.js";
import { selfSignedCert } from "./tls.js";

const LABEL = "io.stowage.engine-test";

/** `docker run -d` of a labelled container, then its id as the engine lists it by that label. */
async function runLabelled(engine: ExtraEngine, through: "socket" | "host", value: string): Promise<string> {
  const options = ["--stop-timeout", "1", "--network", "none", "--label", `${LABEL}=${value}`];
  const args = ["run", "-d", ...options, TEST_IMAGE, "sleep", "600"];
  const id = (await engine.docker(args, { through })).stdout.trim();
  const listed = await engine.docker(["ps", "-q", "--no-trunc", "--filter", `label=${LABEL}=${value}`], {
    through,
  });
  expect(listed.stdout.trim()).toBe(id);
  return id;
}

async function commandLines(): Promise<string[]> {
  const lines: string[] = [];
  for (const pid of (await readdir("/proc")).filter((entry) => /^\d+$/.test(entry)))
    lines.push(await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => ""));
  return lines;
}

/** Nothing of the engine is left: process, network namespace, mount, directory. */
async function expectGone(engine: ExtraEngine): Promise<void> {
  expect((await run("ip", ["netns", "list"])).stdout).not.toContain(engine.netns);
  expect((await commandLines()).filter((line) => line.includes(engine.dir))).toEqual([]);
  expect((await readMountinfo()).filter((m) => m.mountPoint.startsWith(engine.dir))).toEqual([]);
  expect(existsSync(engine.dir)).toBe(false);
}

describe("extra Docker engines", () => {
  const scope = useScope();

  afterAll(async () => {
    // The default engine, which the other test files use, still starts a bridged container.
    const bridged = await run("docker", ["run", "--rm", TEST_IMAGE, "sh", "-c", "ls /sys/class/net"]);
    expect(bridged.stdout).toContain("eth0");
    await run("ip", ["link", "show", "docker0"]);
  });

  it("runs a unix-socket engine of its own: data-root, exec-root, pidfile, containerd, network namespace", async () => {
    const engine = await startEngine(scope, { kind: "unix" });
    expect(engine.host).toBe(`unix://${engine.socket}`);
    const id = await runLabelled(engine, "host", "unix");

    const info = JSON.parse((await engine.docker(["info", "--format", "{{json .}}"])).stdout);
    expect(info.DockerRootDir).toBe(engine.dataRoot);
    const defaultInfo = await dockerClient().info();
    expect(info.ID).not.toBe(defaultInfo.ID);
    expect((await readFile(engine.pidfile, "utf8")).trim()).toBe(String(engine.pid));
    expect(await readlink(`/proc/${engine.pid}/ns/net`)).not.toBe(await readlink("/proc/self/ns/net"));
    const containerd = (await readFile(`${engine.execRoot}/containerd/containerd.pid`, "utf8")).trim();
    const status = await readFile(`/proc/${containerd}/status`, "utf8");
    expect(status).toMatch(new RegExp(`^PPid:\\s+${engine.pid}$`, "m"));
    const onDefault = await dockerClient().listContainers({ all: true, filters: { id: [id] } });
    expect(onDefault).toEqual([]);

    await scope.cleanup();
    await expectGone(engine);
  });

  it("runs a TLS engine the docker CLI and dockerode reach with the client certificate, and refuses a wrong CA", async () => {
    const engine = await startEngine(scope, { kind: "tls" });
    expect(engine.host).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    const id = await runLabelled(engine, "host", "tls");

    const remote = await engine.remoteClient().listContainers({ filters: { label: [`${LABEL}=tls`] } });
    expect(remote.map((c) => c.Id)).toEqual([id]);

    const wrong = await selfSignedCert(await scope.tempDir(), "wrong-ca");
    const tlsFlags = (ca: string) => [
      ...["-H", engine.host, "--tlsverify", "--tlscacert", ca],
      ...["--tlscert", engine.tls?.cert ?? "", "--tlskey", engine.tls?.key ?? "", "ps"],
    ];
    await expect(run("docker", tlsFlags(wrong.cert))).rejects.toThrow(
      /certificate signed by unknown authority/,
    );
    await expect(run("docker", ["-H", engine.host, "ps"])).rejects.toThrow();
  });

  it("runs an ssh engine the docker CLI (ssh://) and dockerode (ssh2) reach with the user key", async () => {
    const engine = await startEngine(scope, { kind: "ssh" });
    expect(engine.host).toMatch(/^ssh:\/\/root@127\.0\.0\.1:\d+$/);
    const id = await runLabelled(engine, "host", "ssh");

    const remote = await engine.remoteClient().listContainers({ filters: { label: [`${LABEL}=ssh`] } });
    expect(remote.map((c) => c.Id)).toEqual([id]);
    // Another key is refused.
    const other = `${await scope.tempDir()}/other_key`;
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
    const stranger = new Docker({
      protocol: "ssh",
      host: "127.0.0.1",
      port: engine.ssh?.port,
      username: "root",
      sshOptions: { privateKey: await readFile(other) },
    });
    await expect(stranger.listContainers()).rejects.toThrow(/authentication methods failed/);

    await scope.cleanup();
    await expectGone(engine);
  });

  it("survives kill -9 of its dockerd and starts again on the same data; a graceful stop too", async () => {
    const engine = await startEngine(scope, { kind: "unix" });
    const [created] = await engine.createContainers(1, { labels: { [LABEL]: "kept" } });
    const before = engine.pid;

    await engine.kill9();
    expect(engine.running).toBe(false);
    await expect(engine.docker(["ps"])).rejects.toThrow(/Cannot connect|connection refused/);
    await engine.start();
    expect(engine.pid).not.toBe(before);
    const listed = await engine.docker(["ps", "-aq", "--no-trunc", "--filter", `label=${LABEL}=kept`]);
    expect(listed.stdout.trim()).toBe(created);
    await runLabelled(engine, "socket", "after-restart");

    await engine.stop();
    await expect(engine.docker(["ps"])).rejects.toThrow();
    await engine.start();
    expect((await engine.client().listContainers({ all: true })).length).toBe(2);
  });
});
