import { spawn } from "node:child_process";
import { chmod, copyFile, mkdir, symlink } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import { dockerClient as systemDockerClient } from "../../src/system/docker.js";
import type { TestScope } from "./scope.js";

/** A tiny image made locally from busybox-static, since no registry can be reached. */
export const TEST_IMAGE = "stowage-test/busybox:1";
export const TEST_LABEL = "io.stowage.test";

const APPLETS = [
  "sh",
  "ls",
  "cat",
  "echo",
  "sleep",
  "mkdir",
  "rm",
  "touch",
  "sync",
  "true",
  "false",
  "wc",
  "head",
];

export function dockerClient(): Docker {
  return systemDockerClient("/var/run/docker.sock");
}

/** A minimal root filesystem: busybox-static and a few applet links in bin/, an empty tmp/. */
export async function buildRootfs(dir: string): Promise<void> {
  await mkdir(path.join(dir, "bin"), { recursive: true });
  await mkdir(path.join(dir, "tmp"), { recursive: true });
  await copyFile("/bin/busybox", path.join(dir, "bin", "busybox"));
  await chmod(path.join(dir, "bin", "busybox"), 0o755);
  for (const applet of APPLETS) await symlink("busybox", path.join(dir, "bin", applet));
}

/** `docker import` of a busybox-static root filesystem, once per host. */
export async function ensureTestImage(scope: TestScope): Promise<string> {
  const docker = dockerClient();
  const existing = await docker.listImages({ filters: { reference: [TEST_IMAGE] } });
  if (existing.length > 0) return TEST_IMAGE;
  const rootfs = await scope.tempDir("stowage-rootfs-");
  await buildRootfs(rootfs);
  const tar = spawn("tar", ["-C", rootfs, "-c", "."], { stdio: ["ignore", "pipe", "inherit"] });
  const [repo, tag] = TEST_IMAGE.split(":");
  const progress = await docker.importImage(tar.stdout, { repo, tag });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(progress, (error) => (error ? reject(error) : resolve())),
  );
  return TEST_IMAGE;
}

/** Create (not start) a container from the test image, labelled as ours and removed with its volumes afterwards. */
export async function createTestContainer(
  scope: TestScope,
  options: Docker.ContainerCreateOptions = {},
): Promise<Docker.Container> {
  const image = await ensureTestImage(scope);
  const container = await dockerClient().createContainer({
    Image: image,
    Cmd: ["sleep", "3600"],
    ...options,
    Labels: { ...options.Labels, [TEST_LABEL]: "1" },
    HostConfig: { NetworkMode: "none", ...options.HostConfig },
  });
  scope.defer(`remove container ${container.id}`, () => container.remove({ force: true, v: true }));
  return container;
}

/** Collect a finished container's stdout. */
export async function containerOutput(container: Docker.Container): Promise<string> {
  const logs = await container.logs({ stdout: true, stderr: false, follow: false });
  return demultiplex(logs);
}

/** Docker's log stream frames each chunk with an 8-byte header (stream id, size). */
function demultiplex(buffer: Buffer): string {
  const parts: Buffer[] = [];
  for (let offset = 0; offset + 8 <= buffer.length; ) {
    const size = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts).toString("utf8");
}
