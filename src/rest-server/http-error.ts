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

/** Full disk or exhausted filesystem quota: 507 Insufficient Storage. */
export function storageError(error: unknown): HttpError | undefined {
  if (isErrno(error, "ENOSPC") || isErrno(error, "EDQUOT")) return new HttpError(507, "insufficient storage");
  return undefined;
}
