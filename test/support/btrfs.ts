import { mkdir, open, rm } from "node:fs/promises";
import path from "node:path";
import { run } from "../../src/system/exec.js";
import { findMount, readMountinfo } from "../../src/system/mountinfo.js";
import type { TestScope } from "./scope.js";

export interface LoopBtrfs {
  /** Loop devices, one per backing file (several for a multi-device filesystem). */
  devices: string[];
  /** Where the top-level subvolume is mounted. */
  mountPoint: string;
  uuid: string;
}

async function sparseFile(file: string, bytes: number): Promise<void> {
  const handle = await open(file, "w");
  await handle.truncate(bytes);
  await handle.close();
}

/**
 * A fresh btrfs filesystem on loop devices backed by sparse temp files, mounted under a temp dir.
 * Everything is unmounted, detached and removed when the scope ends.
 */
export async function createLoopBtrfs(
  scope: TestScope,
  options: { devices?: number; sizeMiB?: number; label?: string } = {},
): Promise<LoopBtrfs> {
  const dir = await scope.tempDir("stowage-btrfs-");
  const devices: string[] = [];
  for (let index = 0; index < (options.devices ?? 1); index++) {
    const image = path.join(dir, `disk${index}.img`);
    await sparseFile(image, (options.sizeMiB ?? 256) * 1024 * 1024);
    const device = (await run("losetup", ["--find", "--show", image])).stdout.trim();
    devices.push(device);
    scope.defer(`detach ${device}`, async () => {
      await run("btrfs", ["device", "scan", "--forget", device], { okStatuses: [0, 1] });
      await run("losetup", ["--detach", device]);
    });
  }
  const label = options.label ? ["--label", options.label] : [];
  await run("mkfs.btrfs", [
    "--quiet",
    "--force",
    "--data",
    "single",
    "--metadata",
    "single",
    ...label,
    ...devices,
  ]);
  const uuid = (
    await run("blkid", ["--output", "value", "--match-tag", "UUID", devices[0] ?? ""])
  ).stdout.trim();
  const mountPoint = path.join(dir, "mnt");
  await mkdir(mountPoint);
  await run("mount", [
    "-t",
    "btrfs",
    "-o",
    devices.map((d) => `device=${d}`).join(","),
    devices[0] ?? "",
    mountPoint,
  ]);
  scope.defer(`unmount ${mountPoint}`, () => unmountAllUnder(mountPoint));
  return { devices, mountPoint, uuid };
}

/** Unmount a mount point and everything stacked or nested under it. */
export async function unmountAllUnder(mountPoint: string): Promise<void> {
  if (findMount(await readMountinfo(), mountPoint)) await run("umount", ["--recursive", mountPoint]);
}

export async function removeTree(target: string): Promise<void> {
  await rm(target, { recursive: true, force: true });
}
