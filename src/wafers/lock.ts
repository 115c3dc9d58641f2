import { existsSync } from "node:fs";
import { withLock } from "../system/lock.js";
import type { WaferStore } from "./store.js";

/**
 * Serialise every change to one $WAFERS (stack, unstack, rm): a kernel lock on the $WAFERS
 * directory itself, so nothing is added to it. Without a $WAFERS directory there is no wafer to
 * change, and nothing is created just to lock it.
 */
export async function withStoreLock<T>(store: WaferStore, work: () => Promise<T>): Promise<T> {
  if (!existsSync(store.root)) return work();
  return withLock(store.root, () => work(), { timeoutMs: 60_000 });
}
