import { type BigIntStats, lstatSync, readdirSync, rmdirSync, unlinkSync } from "node:fs";
import { type ByteString, displayName, fsPath } from "../tar/names.js";
import { ArchiveContentError } from "./errors.js";

export function lstatOf(file: ByteString): BigIntStats | undefined {
  return lstatSync(fsPath(file), { bigint: true, throwIfNoEntry: false });
}

/**
 * Remove a tree like `rm -r --one-file-system`: nothing on another filesystem (st_dev) and no
 * mount point is entered or removed; those are warned about and left, with the way to them.
 */
export function removeTree(
  file: ByteString,
  fence: { dev: bigint; mountPoints: ReadonlySet<ByteString>; warn: (message: string) => void },
): boolean {
  const info = lstatOf(file);
  if (!info) return true;
  if (info.dev !== fence.dev || fence.mountPoints.has(file)) {
    fence.warn(
      `${displayName(file)} is on another filesystem or a mount point (another volume?); left as it is`,
    );
    return false;
  }
  if (!info.isDirectory()) {
    unlinkSync(fsPath(file));
    return true;
  }
  let empty = true;
  for (const name of readdirSync(fsPath(file), { encoding: "latin1" }))
    if (!removeTree(`${file}/${name}`, fence)) empty = false;
  if (empty) rmdirSync(fsPath(file));
  return empty;
}

/** Empty a directory volume without leaving its filesystem or entering what is mounted below it. */
export function emptyDirectory(
  dir: ByteString,
  mountPoints: ReadonlySet<ByteString>,
  warn: (message: string) => void,
): void {
  const dev = (lstatOf(dir) as BigIntStats).dev;
  for (const name of readdirSync(fsPath(dir), { encoding: "latin1" }))
    removeTree(`${dir}/${name}`, { dev, mountPoints, warn });
}

/** Remove whatever is at `full` (a file, or a directory that the archive replaces by a file). */
export function removeExisting(full: ByteString, dev: bigint, warn: (message: string) => void): void {
  if (!removeTree(full, { dev, mountPoints: new Set(), warn }))
    throw new ArchiveContentError(`${displayName(full)} cannot be replaced: it holds another filesystem`);
}
