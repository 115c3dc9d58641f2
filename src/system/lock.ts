import lockfile from "proper-lockfile";
import { LockError } from "./errors.js";

export interface LockOptions {
  /** How long to wait for another holder before giving up (default 60 s; 0 = try once). */
  timeoutMs?: number;
  /**
   * A lock whose holder stopped refreshing it for this long is taken over, so a lock left by a
   * killed process blocks others only this long (default 10 s).
   */
  staleMs?: number;
  /** Called when our lock was taken from us (e.g. the event loop stalled past `staleMs`). */
  onCompromised?: (error: Error) => void;
}

const POLL_MS = 100;

export type ReleaseLock = () => Promise<void>;

/**
 * Advisory, cross-process lock for a path (which need not exist), held as `<path>.lock`. The
 * holder refreshes the lock's mtime while alive; waiting processes poll until it is free or stale.
 */
export async function acquireLock(target: string, options: LockOptions = {}): Promise<ReleaseLock> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const staleMs = Math.max(options.staleMs ?? 10_000, 2_000);
  try {
    const release = await lockfile.lock(target, {
      realpath: false,
      stale: staleMs,
      update: Math.max(1_000, Math.floor(staleMs / 4)),
      retries: {
        retries: Math.ceil(timeoutMs / POLL_MS),
        factor: 1,
        minTimeout: POLL_MS,
        maxTimeout: POLL_MS,
      },
      onCompromised: options.onCompromised ?? (() => {}),
    });
    return async () => {
      await release().catch(() => {});
    };
  } catch (error) {
    throw new LockError(`${target} is locked by another process (waited ${timeoutMs} ms)`, { cause: error });
  }
}

export async function withLock<T>(target: string, work: () => Promise<T>, options?: LockOptions): Promise<T> {
  const release = await acquireLock(target, options);
  try {
    return await work();
  } finally {
    await release();
  }
}
