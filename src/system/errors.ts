/**
 * Typed errors with stable codes. The mapping from code to process exit status lives here and
 * nowhere else, so every command reports the same failure the same way.
 */

import os from "node:os";

export const ERROR_EXIT_CODES = {
  USAGE: 2,
  CONFIG: 1,
  NOT_FOUND: 1,
  INVALID_INPUT: 1,
  EXEC_FAILED: 1,
  COMMAND_NOT_FOUND: 127,
  LOCKED: 75,
  /** Not possible yet, try again later (sysexits EX_TEMPFAIL): e.g. a filesystem is not attached. */
  TEMPORARY: 75,
  /** A service we need (a Backrest API, say) does not answer, or answers with its own failure. */
  UNAVAILABLE: 1,
  MOUNT_FAILED: 125,
  /** A failure of snapshotter, which exits like GNU tar (its 1 means "some files changed"). */
  FAILED: 2,
  INTERNAL: 70,
  /** Stopped by a signal: 128 + its number (see InterruptedError); this is SIGTERM's. */
  INTERRUPTED: 143,
} as const;

export type ErrorCode = keyof typeof ERROR_EXIT_CODES;

export class StowageError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  get exitCode(): number {
    return ERROR_EXIT_CODES[this.code];
  }
}

/** The user asked for something the command line cannot express (unknown option, missing argument). */
export class UsageError extends StowageError {
  constructor(message: string) {
    super("USAGE", message);
  }
}

/** A configuration file, flag value or environment variable is wrong. */
export class ConfigError extends StowageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("CONFIG", message, options);
  }
}

export class MountError extends StowageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("MOUNT_FAILED", message, options);
  }
}

export class LockError extends StowageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("LOCKED", message, options);
  }
}

/** 128 + the signal's number: what a shell reports for a process a signal ended. */
export function signalExitStatus(signal: NodeJS.Signals): number {
  return 128 + (os.constants.signals[signal] ?? 0);
}

/** The work was stopped by SIGINT/SIGTERM/SIGHUP at a safe point: exit 128+N, as if killed by it. */
export class InterruptedError extends StowageError {
  constructor(readonly signal: NodeJS.Signals) {
    super("INTERRUPTED", `stopped by ${signal}`);
  }

  override get exitCode(): number {
    return signalExitStatus(this.signal);
  }
}

/**
 * A failed system call (ENOSPC, EACCES, EROFS, ENOENT, ...): a condition of the host, not a bug
 * of ours. Node gives such errors a string `code` and the `syscall` that failed.
 */
export function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  const e = error as NodeJS.ErrnoException;
  return (
    error instanceof Error &&
    typeof e.code === "string" &&
    /^E[A-Z0-9]+$/.test(e.code) &&
    typeof e.syscall === "string"
  );
}

/**
 * Exit status for anything thrown out of a command: a StowageError's own; a failed system call 1
 * (the message names the call and path); anything else is an internal error (70), a bug of ours.
 */
export function exitCodeFor(error: unknown): number {
  if (error instanceof StowageError) return error.exitCode;
  if (isSystemError(error)) return 1;
  return ERROR_EXIT_CODES.INTERNAL;
}

/** A failure of a command that exits like GNU tar (see `asTarFailure`). */
export class TarStyleFailure extends StowageError {
  constructor(cause: StowageError) {
    super("FAILED", cause.message, { cause });
  }
}

/**
 * snapshotter exits like GNU tar: 1 means "finished, but some files changed while they were
 * read" (the archive is valid), so its failures that would be 1 elsewhere are 2 ("FAILED").
 */
export function asTarFailure(error: unknown): unknown {
  return error instanceof StowageError && error.exitCode === 1 ? new TarStyleFailure(error) : error;
}

/** A message fit for one line on stderr. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Narrow an unknown caught value to a Node.js system error with the given errno code. */
export function isErrno(error: unknown, code: string): error is NodeJS.ErrnoException {
  return typeof error === "object" && error !== null && (error as NodeJS.ErrnoException).code === code;
}
