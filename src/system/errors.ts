/**
 * Typed errors with stable codes. The mapping from code to process exit status lives here and
 * nowhere else, so every command reports the same failure the same way.
 */

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
  NOT_IMPLEMENTED: 1,
  MOUNT_FAILED: 125,
  INTERNAL: 70,
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

export class NotImplementedError extends StowageError {
  constructor(what = "this command") {
    super("NOT_IMPLEMENTED", `${what} is not implemented yet`);
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

/** Exit status for anything thrown out of a command. Unknown errors are internal errors. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof StowageError) return error.exitCode;
  return ERROR_EXIT_CODES.INTERNAL;
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
