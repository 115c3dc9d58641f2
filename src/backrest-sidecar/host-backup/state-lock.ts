import { mkdir } from "node:fs/promises";
import path from "node:path";
import { withLock } from "../../system/lock.js";
import type { Logger } from "../../system/log.js";

/**
 * backup-once, restore and recover change the same things (containers' states, snapshots, volume
 * trees, the journals): one at a time per state dir. A second one waits up to `timeoutMs` for the
 * first (a timer's next run behind a long backup), then fails naming the holder.
 */
export async function withStateLock<T>(
  stateDir: string,
  what: string,
  options: { signal?: AbortSignal; timeoutMs?: number; log: Logger },
  work: () => Promise<T>,
): Promise<T> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  return withLock(path.join(stateDir, "run.lock"), work, {
    timeoutMs: options.timeoutMs ?? 60_000,
    pidFile: true,
    ...(options.signal ? { signal: options.signal } : {}),
    onWait: (holder) =>
      options.log.warn(
        { action: `${what}.waiting`, holder },
        `another backup-once, restore or recover is running; ${what} waits for it`,
      ),
  });
}
