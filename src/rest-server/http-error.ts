import { isErrno } from "../system/errors.js";

/** A failure with the HTTP status to answer it with; its message becomes the text/plain body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/**
 * Filesystem errors with a known answer: a full disk or exhausted quota (507 Insufficient
 * Storage), and errors the request itself caused, such as a name too long for the filesystem (414).
 */
export function storageError(error: unknown): HttpError | undefined {
  if (isErrno(error, "ENOSPC") || isErrno(error, "EDQUOT")) return new HttpError(507, "insufficient storage");
  if (isErrno(error, "ENAMETOOLONG")) return new HttpError(414, "path too long for the filesystem");
  return undefined;
}
