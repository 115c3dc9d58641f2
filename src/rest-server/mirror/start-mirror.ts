import { mkdir } from "node:fs/promises";
import path from "node:path";
import { ConfigError, LockError } from "../../system/errors.js";
import { acquireLock } from "../../system/lock.js";
import type { Logger } from "../../system/log.js";
import { isS3Location, openStorage, type StorageSpec } from "../open-storage.js";
import type { Storage } from "../storage.js";
import { MirrorQueue } from "./mirror-queue.js";
import { MirroredStorage } from "./mirrored-storage.js";

export interface MirrorOptions {
  /** A directory, or `s3://BUCKET[/PREFIX]`. */
  location: string;
  s3Endpoint: string | undefined;
  s3Profile: string | undefined;
  /** Propagate deletes of data, index and snapshots this long after they happen; undefined: never. */
  deletesAfterMs: number | undefined;
  /** The queue's journal (default `<path>/.mirror-queue`). */
  queueDir: string;
  lagWarnMs: number;
  concurrency: number;
  /** While clients upload, copies wait at most this long (then one at a time). */
  maxDeferMs: number;
}

export interface RunningMirror {
  storage: Storage;
  queue: MirrorQueue;
  close(): Promise<void>;
}

/** Two locations of which one is the other or lies within it (directories, or s3://bucket/prefix). */
function nested(a: string, b: string): boolean {
  const inside = (outer: string, inner: string) =>
    inner === outer || inner.startsWith(`${outer.replace(/\/+$/, "")}/`);
  return inside(a, b) || inside(b, a);
}

/** The mirror's storage, as the start-up checks see it. */
export function mirrorStorage(
  options: MirrorOptions,
  groupAccessible: boolean,
  log: Logger,
): Promise<Storage> {
  const spec: StorageSpec = {
    location: options.location,
    flag: "--mirror",
    s3Endpoint: options.s3Endpoint,
    s3Profile: options.s3Profile,
    groupAccessible,
  };
  return openStorage(spec, log);
}

/**
 * Put the mirror behind `primary`: its storage checked (a wrong setting ends the start with what
 * to fix; a mirror that is only unreachable now is a warning, the queue waits for it), the queue's
 * directory locked for this server alone, and the journal replayed.
 */
export async function startMirror(
  primary: Storage,
  options: MirrorOptions,
  groupAccessible: boolean,
  log: Logger,
): Promise<RunningMirror> {
  const mirror = await mirrorStorage(options, groupAccessible, log);
  if (nested(mirror.location, primary.location))
    throw new ConfigError(
      `--mirror ${options.location} is the primary storage, or inside it or around it: the mirror must be a place of its own`,
    );
  try {
    await mirror.prepare();
  } catch (error) {
    const { isUnreachable } = isS3Location(options.location)
      ? await import("../s3-errors.js")
      : { isUnreachable: () => false };
    if (!(error instanceof ConfigError) || !isUnreachable(error.cause)) throw error;
    log.warn(
      { action: "mirror.unreachable", mirror: mirror.location, err: error.message },
      "the mirror cannot be reached now; serving anyway, its queue waits for it",
    );
  }
  await mkdir(options.queueDir, { recursive: true, mode: 0o700 }).catch((error: unknown) => {
    throw new ConfigError(
      `cannot make the mirror queue's directory ${options.queueDir}: ${(error as Error).message}; choose another with --mirror-queue`,
    );
  });
  const lock = await acquireLock(path.join(options.queueDir, "lock"), { timeoutMs: 0, pidFile: true }).catch(
    (error: unknown) => {
      if (!(error instanceof LockError)) throw error;
      throw new ConfigError(
        `the mirror queue ${options.queueDir} is in use by another rest-server (${error.message}); give each server its own --mirror-queue`,
      );
    },
  );
  try {
    const queue = await MirrorQueue.open({
      primary,
      mirror,
      dir: options.queueDir,
      deletesAfterMs: options.deletesAfterMs,
      concurrency: options.concurrency,
      lagWarnMs: options.lagWarnMs,
      maxDeferMs: options.maxDeferMs,
      log,
    });
    log.info(
      {
        action: "mirror",
        mirror: mirror.location,
        queue: options.queueDir,
        deletes: options.deletesAfterMs === undefined ? "never" : `after ${options.deletesAfterMs / 1000} s`,
      },
      "mirroring to a second storage",
    );
    return {
      storage: new MirroredStorage(primary, queue),
      queue,
      async close() {
        await queue.close();
        lock.release();
      },
    };
  } catch (error) {
    lock.release();
    throw error;
  }
}
