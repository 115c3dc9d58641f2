import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { chown, lstat, mkdir, rm, rmdir, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { MountError } from "../system/errors.js";
import { mount } from "../system/mount.js";
import { findMount, readMountinfo } from "../system/mountinfo.js";
import { readXattr } from "../system/xattr.js";
import { waferMounts } from "./mounts.js";
import { checkName } from "./names.js";
import { WaferError, type WaferStore } from "./store.js";

/**
 * Overlay options pinned rather than left to distribution defaults: no index (lower layers are
 * shared between stacks), no redirect_dir and no metacopy (a layer stays a plain tree that tar and
 * `wafers commit` can carry), no xino (inode numbers as the layers have them).
 */
export const OVERLAY_OPTIONS = ["index=off", "redirect_dir=off", "metacopy=off", "xino=off"] as const;

export interface StackResult {
  /** Layers in the stack, the wafer's own included (what the original prints). */
  layers: number;
  mountPoint: string;
  alreadyStacked: boolean;
  warnings: string[];
}

/** A whiteout is a 0/0 character device. */
async function kindAt(file: string): Promise<"file" | "dir" | "whiteout" | "other" | "absent"> {
  try {
    const info = await lstat(file);
    if (info.isCharacterDevice() && info.rdev === 0) return "whiteout";
    if (info.isDirectory()) return "dir";
    return info.isFile() ? "file" : "other";
  } catch {
    return "absent";
  }
}

/**
 * Does the merged view of these layers (top first) hold /etc/machine-id? The first layer that says
 * anything about it decides: a file (yes), a whiteout of it or of /etc (no); an opaque /etc above
 * that layer hides it.
 */
export async function stackHasMachineId(layers: readonly string[]): Promise<boolean> {
  const etcAbove: string[] = [];
  for (const layer of layers) {
    const etc = path.join(layer, "etc");
    const etcKind = await kindAt(etc);
    if (etcKind === "absent") continue;
    if (etcKind !== "dir") return false;
    const id = await kindAt(path.join(etc, "machine-id"));
    if (id === "file") {
      if (etcAbove.length === 0) return true;
      const opaque = await readXattr(etcAbove, "trusted.overlay.opaque");
      return ![...opaque.values()].some((value) => value.toString() === "y");
    }
    if (id !== "absent") return false;
    etcAbove.push(etc);
  }
  return false;
}

/** Create a new wafer on top of `parent`: data/, work/, parent file, fresh machine-id, owner. */
async function createWafer(store: WaferStore, name: string, parent: string, lowers: string[]): Promise<void> {
  const dir = store.dir(name);
  await mkdir(dir);
  try {
    await mkdir(store.data(name));
    await mkdir(store.work(name));
    await writeFile(store.parentFile(name), `${parent}\n`);
    const root = await stat(store.data(parent));
    const owned = [store.data(name)];
    if (await stackHasMachineId(lowers)) {
      const etc = path.join(store.data(name), "etc");
      const etcInfo = await stat(path.join(store.data(parent), "etc")).catch(() => root);
      await mkdir(etc, { mode: etcInfo.mode & 0o7777 });
      await writeFile(path.join(etc, "machine-id"), `${randomBytes(16).toString("hex")}\n`, { mode: 0o444 });
      owned.push(etc, path.join(etc, "machine-id"));
    }
    for (const file of owned) await chown(file, root.uid, root.gid);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Mount the overlay through short relative links made in a private temp directory (`0`, `1`, ...),
 * with mount(8) run from there: 500 layers fit the one-page option limit whatever the paths are.
 */
async function mountOverlay(
  store: WaferStore,
  name: string,
  lowers: string[],
  target: string,
): Promise<void> {
  const links = mkdtempSync(path.join(os.tmpdir(), "wafers-layers-"));
  try {
    for (const [index, lower] of lowers.entries()) symlinkSync(lower, path.join(links, String(index)));
    await mount(
      {
        source: "wafers",
        target,
        fsType: "overlay",
        options: [
          `lowerdir=${lowers.map((_, index) => index).join(":")}`,
          `upperdir=${store.data(name)}`,
          `workdir=${store.work(name)}`,
          ...OVERLAY_OPTIONS,
        ],
      },
      { cwd: links },
    );
  } finally {
    rmSync(links, { recursive: true, force: true });
  }
}

/** `wafers stack NAME [PARENT]`: create the wafer if needed and mount its whole stack at $STACKS/NAME. */
export async function stack(
  store: WaferStore,
  stacksRoot: string,
  name: string,
  givenParent: string | undefined,
): Promise<StackResult> {
  checkName(name);
  if (givenParent !== undefined) checkName(givenParent, "parent name");
  const exists = store.exists(name);
  const recorded = exists ? store.parentOf(name) : undefined;
  if (exists && givenParent !== undefined && recorded !== givenParent) {
    throw new WaferError(
      recorded === undefined
        ? `wafer '${name}' exists without a parent; it cannot be given parent '${givenParent}'`
        : `wafer '${name}' has parent '${recorded}', not '${givenParent}'`,
    );
  }
  if (!exists && givenParent === undefined) {
    throw new WaferError(`wafer '${name}' not found: no ${store.data(name)} (give a parent to create it)`);
  }
  const chain = store.ancestry(name, exists ? recorded : givenParent);
  const ancestors = chain.slice(1);
  const target = path.join(stacksRoot, name);
  const warnings: string[] = [];

  const mounts = await waferMounts(store);
  const own = mounts.filter((mount) => mount.name === name);
  if (own.some((mount) => mount.mountPoint === target)) {
    return { layers: chain.length, mountPoint: target, alreadyStacked: true, warnings };
  }
  if (own.length > 0) {
    throw new WaferError(
      `wafer '${name}' is already mounted at ${own[0]?.mountPoint}; a wafer can be mounted once`,
    );
  }
  for (const ancestor of ancestors) {
    const live = mounts.find((mount) => mount.name === ancestor && mount.writable);
    if (live) {
      throw new WaferError(
        `ancestor '${ancestor}' of '${name}' is live as the writable layer of the stack at ${live.mountPoint}; ` +
          `unstack it first (a lower layer changing under a stack is undefined)`,
      );
    }
  }
  if (ancestors.length === 0) {
    for (const other of mounts.filter((mount) => mount.kind === "overlay")) {
      let lowers: string[] = [];
      try {
        lowers = store.ancestry(other.name).slice(1);
      } catch {
        // A stack whose ancestry broke since it was mounted tells us nothing here.
      }
      if (lowers.includes(name)) {
        warnings.push(
          `'${name}' is a lower layer of the stack at ${other.mountPoint}; changing it while that stack is mounted is undefined`,
        );
      }
    }
  }
  const existing = findMount(await readMountinfo(), target);
  if (existing)
    throw new WaferError(
      `something else is already mounted at ${target} (${existing.fsType} ${existing.source})`,
    );

  const madeWafer = !exists;
  if (madeWafer)
    await createWafer(
      store,
      name,
      givenParent as string,
      ancestors.map((a) => store.data(a)),
    );
  let madeMountPoint = false;
  try {
    madeMountPoint = await makeMountPoint(target);
    if (ancestors.length === 0) {
      await mount({ source: store.data(name), target, options: ["bind"] });
    } else {
      await mountOverlay(
        store,
        name,
        ancestors.map((a) => store.data(a)),
        target,
      );
    }
  } catch (error) {
    if (madeMountPoint) await rmdir(target).catch(() => {});
    if (madeWafer) await rm(store.dir(name), { recursive: true, force: true });
    if (error instanceof MountError) throw error;
    throw new MountError(`cannot stack '${name}' at ${target}: ${(error as Error).message}`);
  }
  return { layers: chain.length, mountPoint: target, alreadyStacked: false, warnings };
}

/** mkdir -p the mount point; true when the last directory was made by us (so a failure removes it). */
async function makeMountPoint(target: string): Promise<boolean> {
  try {
    await mkdir(target);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await mkdir(path.dirname(target), { recursive: true });
  await mkdir(target);
  return true;
}
