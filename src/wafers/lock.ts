import { existsSync } from "node:fs";
import path from "node:path";
import { withLock } from "../system/lock.js";
import type { WaferStore } from "./store.js";

/**
 * Serialise every change to one $WAFERS (stack, unstack, rm): `<WAFERS>/.wafers.lock`. Without a
 * $WAFERS directory there is no wafer to change, and nothing is created just to lock it.
 */
export async function withStoreLock<T>(store: WaferStore, work: () => Promise<T>): Promise<T> {
  if (!existsSync(store.root)) return work();
  return withLock(path.join(store.root, ".wafers"), work, { timeoutMs: 60_000, staleMs: 10_000 });
}
