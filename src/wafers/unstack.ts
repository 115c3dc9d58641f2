import { rmdir } from "node:fs/promises";
import path from "node:path";
import { isErrno } from "../system/errors.js";
import { umount } from "../system/mount.js";
import { findMount, readMountinfo } from "../system/mountinfo.js";
import { isStackOf, waferMounts } from "./mounts.js";
import { nameProblem } from "./names.js";
import type { WaferStore } from "./store.js";

export interface UnstackReport {
  name: string;
  ok: boolean;
  message: string;
}

/**
 * `wafers unstack NAME...`: take down each stack wafers mounted at $STACKS/NAME and remove the
 * mount point. A foreign mount there is left alone, a busy one is reported; either way the other
 * names are still handled.
 */
export async function unstack(
  store: WaferStore,
  stacksRoot: string,
  names: readonly string[],
): Promise<UnstackReport[]> {
  const reports: UnstackReport[] = [];
  const mounts = await waferMounts(store);
  for (const name of names) {
    const problem = nameProblem(name);
    if (problem) {
      reports.push({ name, ok: false, message: `invalid wafer name ${JSON.stringify(name)}: it ${problem}` });
      continue;
    }
    const target = path.join(stacksRoot, name);
    const mounted = findMount(await readMountinfo(), target);
    if (!mounted) {
      reports.push({ name, ok: true, message: `nothing stacked at ${target}` });
      continue;
    }
    if (!isStackOf(mounts, name, target)) {
      reports.push({
        name,
        ok: false,
        message: `${target} holds a mount wafers did not make (${mounted.fsType} ${mounted.source}); left alone`,
      });
      continue;
    }
    try {
      await umount(target);
    } catch (error) {
      const busy = /busy/i.test((error as Error).message);
      reports.push({
        name,
        ok: false,
        message: busy ? `${target} is busy (a process uses it); still stacked` : (error as Error).message,
      });
      continue;
    }
    await rmdir(target).catch((error: unknown) => {
      if (!isErrno(error, "ENOENT") && !isErrno(error, "ENOTEMPTY")) throw error;
    });
    reports.push({ name, ok: true, message: `unstacked ${target}` });
  }
  return reports;
}
