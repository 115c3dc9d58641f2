import { rm } from "node:fs/promises";
import { readMountinfo } from "../system/mountinfo.js";
import { waferMounts } from "./mounts.js";
import { checkName } from "./names.js";
import { WaferError, type WaferStore } from "./store.js";

/** `wafers rm NAME`: delete a wafer that no other wafer builds on and that is not mounted. */
export async function removeWafer(store: WaferStore, name: string): Promise<void> {
  checkName(name);
  if (!store.exists(name)) throw new WaferError(`wafer '${name}' not found in ${store.root}`);
  const children = store.children(name);
  if (children.length > 0) {
    throw new WaferError(
      `wafer '${name}' is the parent of ${children.map((c) => `'${c}'`).join(", ")}; remove those first`,
    );
  }
  const mounted = (await waferMounts(store)).find((mount) => mount.name === name);
  if (mounted) throw new WaferError(`wafer '${name}' is mounted at ${mounted.mountPoint}; unstack it first`);
  const inside = (await readMountinfo()).find((entry) => entry.mountPoint.startsWith(`${store.dir(name)}/`));
  if (inside) throw new WaferError(`something is mounted inside wafer '${name}' (${inside.mountPoint})`);
  await rm(store.dir(name), { recursive: true });
}
