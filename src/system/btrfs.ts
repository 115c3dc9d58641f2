import { realpath } from "node:fs/promises";
import path from "node:path";
import { run } from "./exec.js";
import { findContainingMount, readMountinfo } from "./mountinfo.js";
import { shellQuote } from "./shell-quote.js";

/** Where a directory lives in a btrfs filesystem: enough to snapshot its subvolume from anywhere. */
export interface BtrfsLocation {
  uuid: string;
  /** Every device of the filesystem (a multi-device btrfs needs them all to mount). */
  devices: string[];
  /** The subvolume holding the directory, as a path from the top-level subvolume ("" = top level). */
  subvolume: string;
  /** The directory's path inside that subvolume ("" = its root). */
  relative: string;
}

/** A subvolume nested below a directory: its data is not in the parent's snapshot. */
export interface NestedSubvolume {
  /** Path below the directory (`db/pg_wal`). */
  below: string;
  /** Path from the top-level subvolume. */
  subvolume: string;
}

const trimSlashes = (text: string) => text.replace(/^\/+|\/+$/g, "");

/** uuid and devices of the btrfs filesystem on `device`. */
async function filesystemOf(device: string): Promise<{ uuid: string; devices: string[] }> {
  const show = (await run("btrfs", ["filesystem", "show", device])).stdout;
  const uuid = /uuid: ([0-9a-f-]{36})/.exec(show)?.[1];
  const devices = [...show.matchAll(/^\s*devid\s.*\spath (\S+)\s*$/gm)].map((m) => m[1] as string);
  if (!uuid || devices.length === 0)
    throw new Error(`btrfs filesystem show ${device}: no uuid or devices in its output`);
  return { uuid, devices };
}

/**
 * Locate a directory in btrfs, or undefined when it is not on btrfs. Works through bind mounts (the
 * mount table says which part of the filesystem is mounted where), so the location stays valid
 * when the bind is gone (a container's volume unmounted when it stops).
 */
export async function locateBtrfs(directory: string): Promise<BtrfsLocation | undefined> {
  const real = await realpath(directory);
  const mount = findContainingMount(await readMountinfo(), real);
  if (mount?.fsType !== "btrfs") return undefined;
  const inFilesystem = trimSlashes(path.posix.join(mount.root, path.posix.relative(mount.mountPoint, real)));
  const id = (await run("btrfs", ["inspect-internal", "rootid", real])).stdout.trim();
  // The top-level subvolume (id 5) has no path of its own.
  const subvolume =
    id === "5"
      ? ""
      : trimSlashes((await run("btrfs", ["inspect-internal", "subvolid-resolve", id, real])).stdout.trim());
  const relative =
    subvolume === ""
      ? inFilesystem
      : inFilesystem === subvolume
        ? ""
        : inFilesystem.slice(subvolume.length + 1);
  if (subvolume !== "" && inFilesystem !== subvolume && !inFilesystem.startsWith(`${subvolume}/`))
    throw new Error(
      `${directory}: btrfs says it is in subvolume ${subvolume}, the mount table says ${inFilesystem}`,
    );
  return { ...(await filesystemOf(mount.source)), subvolume, relative };
}

/**
 * Subvolumes nested anywhere below a directory (children of children too), from btrfs's own list:
 * a snapshot of the directory's subvolume holds each of them as an empty directory.
 */
export async function nestedSubvolumes(
  directory: string,
  location: BtrfsLocation,
): Promise<NestedSubvolume[]> {
  const base = trimSlashes(path.posix.join(location.subvolume, location.relative));
  const found: NestedSubvolume[] = [];
  const visit = async (inside: string) => {
    const listed = (await run("btrfs", ["subvolume", "list", "-o", inside])).stdout;
    for (const match of listed.matchAll(/ path (.+)$/gm)) {
      const subvolume = trimSlashes(match[1] as string).replace(/^<FS_TREE>\//, "");
      if (base !== "" && subvolume !== base && !subvolume.startsWith(`${base}/`)) continue;
      const below = base === "" ? subvolume : subvolume.slice(base.length + 1);
      found.push({ below, subvolume });
      await visit(path.join(directory, below));
    }
  };
  await visit(directory);
  return found.sort((a, b) => (a.below < b.below ? -1 : 1));
}

/** A directory on btrfs is a subvolume's root when its inode number is 256. */
export function isSubvolumeRoot(info: { ino: number | bigint; isDirectory(): boolean }): boolean {
  return info.isDirectory() && Number(info.ino) === 256;
}

export async function createSubvolume(directory: string): Promise<void> {
  await run("btrfs", ["subvolume", "create", directory]);
}

/** `mount` options for the top-level subvolume of a filesystem, naming every device. */
export function topLevelMountOptions(devices: readonly string[]): string {
  return ["subvolid=5", ...devices.map((device) => `device=${device}`)].join(",");
}

export interface BtrfsFilesystem {
  uuid: string;
  devices: readonly string[];
}

/**
 * Shell lines, for bash inside a private mount namespace, that mount each filesystem's top-level
 * subvolume under `<scratch>/.stowage-btrfs/<uuid>`; `scratch` is a directory already covered by
 * a private tmpfs (so nothing of this shows on the host). See `topLevelPath`.
 */
export function mountTopLevelsScript(scratch: string, filesystems: readonly BtrfsFilesystem[]): string[] {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const fs of filesystems) {
    if (seen.has(fs.uuid)) continue;
    seen.add(fs.uuid);
    const dir = topLevelPath(scratch, fs.uuid);
    lines.push(
      `mkdir -p ${dir}`,
      `mount -t btrfs -o ${shellQuote(topLevelMountOptions(fs.devices))} ${shellQuote(fs.devices[0] ?? "")} ${dir}`,
    );
  }
  return lines;
}

/** A path inside a filesystem's top-level subvolume as mounted by mountTopLevelsScript (quoted). */
export function topLevelPath(scratch: string, uuid: string, ...parts: string[]): string {
  return shellQuote(path.posix.join(scratch, ".stowage-btrfs", uuid, ...parts.filter((p) => p !== "")));
}
