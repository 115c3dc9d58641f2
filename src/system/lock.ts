import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  openSync,
  readFileSync,
  statSync,
  writeSync,
} from "node:fs";
import { isErrno, LockError, StowageError } from "./errors.js";
import { ExecError, run } from "./exec.js";

export interface LockOptions {
  /** How long to wait for another holder before giving up (default 60 s; 0 = try once). */
  timeoutMs?: number;
  /** Create the lock file when it is missing (default); false: a missing file is an error. */
  create?: boolean;
  /**
   * The file exists only to be locked (`<something>.lock`): the holder's PID is written into it,
   * for the messages of those who wait. Never set it for a file with content of its own.
   */
  pidFile?: boolean;
  /** Told once, when another process holds the lock and we start to wait for it. */
  onWait?: (holder: string) => void;
  /** Aborting stops the wait (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** A lock we hold: the kernel keeps it for as long as `fd` stays open in some process. */
export interface HeldLock {
  readonly file: string;
  /** The descriptor the lock lives on; pass it to a child that must keep the lock while it runs. */
  readonly fd: number;
  /**
   * Throws a LockError when the lock file was removed or replaced since we locked it: from then on
   * another process could lock the new file, so work that must be exclusive stops here.
   */
  check(): void;
  release(): void;
}

/** The flock(1) exit status for "held by someone else" (asked for with --conflict-exit-code). */
const BUSY = 75;

function openLockFile(file: string, create: boolean): number {
  try {
    // A directory is locked through a read-only descriptor (flock(2) allows it).
    return openSync(file, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (error) {
    if (!isErrno(error, "ENOTDIR") && !(isErrno(error, "ENOENT") && create)) {
      if (isErrno(error, "ENOENT")) throw new StowageError("NOT_FOUND", `${file} does not exist`);
      throw error;
    }
  }
  return openSync(file, constants.O_RDWR | constants.O_CREAT, 0o600);
}

/** Is `fd` still the file at `file` (not unlinked, not renamed over)? */
function isCurrent(fd: number, file: string): boolean {
  const held = fstatSync(fd);
  try {
    const now = statSync(file);
    return now.ino === held.ino && now.dev === held.dev;
  } catch (error) {
    if (isErrno(error, "ENOENT")) return false;
    throw error;
  }
}

function holderOf(file: string, pidFile: boolean): string {
  if (!pidFile) return "another process";
  try {
    const pid = readFileSync(file, "utf8").trim();
    return /^\d+$/.test(pid) ? `process ${pid}` : "another process";
  } catch {
    return "another process";
  }
}

async function flock(fd: number, waitMs: number, signal: AbortSignal | undefined): Promise<boolean> {
  const wait = waitMs <= 0 ? ["--nonblock"] : ["--wait", String(waitMs / 1000)];
  try {
    await run("flock", ["--exclusive", ...wait, "--conflict-exit-code", String(BUSY), "3"], {
      fds: [fd],
      ...(signal ? { signal } : {}),
    });
    return true;
  } catch (error) {
    if (error instanceof ExecError && error.status === BUSY) return false;
    throw error;
  }
}

/**
 * An exclusive flock(2) lock on `file` (created if missing, unless `create: false`; a directory is
 * locked as it is). flock(1) takes the lock on a descriptor of ours that it inherits, so the lock
 * belongs to our open file: the kernel drops it when we close it or when this process dies, however
 * it dies. Nothing refreshes it and nothing guesses staleness, so it cannot be taken from a holder
 * that is alive, however long its event loop is blocked. The file is never removed (that would let
 * two processes lock two different files).
 */
export async function acquireLock(file: string, options: LockOptions = {}): Promise<HeldLock> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    const fd = openLockFile(file, options.create ?? true);
    let keep = false;
    try {
      if (!(await flock(fd, 0, options.signal))) {
        const left = deadline - Date.now();
        if (left > 0 && !told) options.onWait?.(holderOf(file, options.pidFile ?? false));
        told = true;
        if (left <= 0 || !(await flock(fd, left, options.signal))) {
          const holder = holderOf(file, options.pidFile ?? false);
          throw new LockError(`${file} is locked by ${holder} (waited ${timeoutMs} ms)`);
        }
      }
      // Removed or renamed over while we waited, the lock we got guards nothing: lock the new file.
      if (isCurrent(fd, file)) {
        keep = true;
        if (options.pidFile) recordHolder(fd);
        return heldLock(file, fd);
      }
    } finally {
      if (!keep) closeSync(fd);
    }
  }
}

function recordHolder(fd: number): void {
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
  } catch {
    // A read-only lock file still locks; only the holder's PID in waiting messages is lost.
  }
}

function heldLock(file: string, fd: number): HeldLock {
  let open = true;
  return {
    file,
    fd,
    check() {
      if (!open) throw new LockError(`lock ${file} was already released`);
      if (!isCurrent(fd, file)) {
        throw new LockError(
          `lock file ${file} was removed or replaced while this process held it; another process may lock it now, so this one stops`,
        );
      }
    },
    release() {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}

export async function withLock<T>(
  file: string,
  work: (lock: HeldLock) => Promise<T>,
  options?: LockOptions,
): Promise<T> {
  const lock = await acquireLock(file, options);
  try {
    return await work(lock);
  } finally {
    lock.release();
  }
}
