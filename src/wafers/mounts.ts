import { statSync } from "node:fs";
import path from "node:path";
import { type MountEntry, readMountinfo } from "../system/mountinfo.js";
import { nameProblem } from "./names.js";
import type { WaferStore } from "./store.js";

/** Where a wafer's data/ is live: the upper layer of an overlay, or bind-mounted (the parentless case). */
export interface WaferMount {
  name: string;
  mountPoint: string;
  kind: "overlay" | "bind";
  writable: boolean;
}

function option(entry: MountEntry, key: string): string | undefined {
  const prefix = `${key}=`;
  return entry.superOptions.find((item) => item.startsWith(prefix))?.slice(prefix.length);
}

/** "device inode" of a path, or undefined when it cannot be read. */
function identity(file: string): string | undefined {
  const info = statSync(file, { bigint: true, throwIfNoEntry: false });
  return info ? `${info.dev} ${info.ino}` : undefined;
}

/** The wafer whose data/ this path is, if it is `<root>/<valid name>/data`. */
function waferOfDataPath(store: WaferStore, dataPath: string): string | undefined {
  const dir = path.dirname(dataPath);
  const name = path.basename(dir);
  if (path.basename(dataPath) !== "data" || path.dirname(dir) !== store.root) return undefined;
  return nameProblem(name) === undefined ? name : undefined;
}

/**
 * Every mount of any wafer of this store, from the mount table alone: overlays whose upperdir is a
 * wafer's data/, and bind mounts whose root is a wafer's data/ directory (the mount's root path
 * names it; the same device and inode prove it).
 */
export async function waferMounts(store: WaferStore): Promise<WaferMount[]> {
  const found: WaferMount[] = [];
  for (const entry of await readMountinfo()) {
    const writable = !entry.mountOptions.includes("ro");
    if (entry.fsType === "overlay") {
      const upper = option(entry, "upperdir");
      const name = upper === undefined ? undefined : waferOfDataPath(store, path.resolve(upper));
      if (name !== undefined) found.push({ name, mountPoint: entry.mountPoint, kind: "overlay", writable });
      continue;
    }
    // A bind mount's root is the bound directory's path inside its filesystem: it ends in /<name>/data.
    if (path.basename(entry.root) !== "data") continue;
    const name = path.basename(path.dirname(entry.root));
    if (nameProblem(name) !== undefined) continue;
    const data = identity(store.data(name));
    if (data !== undefined && data === identity(entry.mountPoint)) {
      found.push({ name, mountPoint: entry.mountPoint, kind: "bind", writable });
    }
  }
  return found;
}

/** Is the mount at `mountPoint` this wafer's own stack (so unstack may take it down)? */
export function isStackOf(mounts: readonly WaferMount[], name: string, mountPoint: string): boolean {
  return mounts.some((mount) => mount.name === name && mount.mountPoint === mountPoint);
}
