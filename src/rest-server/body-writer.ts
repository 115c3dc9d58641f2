import { createHash } from "node:crypto";
import { writev } from "node:fs";
import type { Readable } from "node:stream";
import { HttpError } from "./http-error.js";
import { noteBodyBytes } from "./young-gc.js";

/**
 * Body bytes held in memory per upload before the socket is paused. Reading runs ahead of the disk
 * writes by up to this much, so a pack arrives at socket speed while the previous batch is written.
 */
const READ_AHEAD_BYTES = 1024 * 1024;

/**
 * Stream a request body into an open file descriptor and return its SHA-256 (hex) when asked for.
 * The body must be exactly `size` bytes. Chunks that arrive while a write is in flight are written
 * together by the next writev, so the disk sees few large writes and the socket is read without
 * waiting for each one. Hand-written instead of a stream pipeline: a Transform stage in between
 * made each 16 MiB pack of restic arrive measurably slower (its small buffers pause the socket).
 */
export function writeBody(
  fd: number,
  body: Readable,
  size: number,
  wantDigest: boolean,
): Promise<string | undefined> {
  const hash = wantDigest ? createHash("sha256") : undefined;
  return new Promise((resolve, reject) => {
    let received = 0;
    let queue: Buffer[] = [];
    let queued = 0;
    let writing = false;
    let ended = false;
    let failure: unknown;
    let settled = false;

    const detach = () => {
      body.off("data", onData);
      body.off("end", onEnd);
      body.off("error", fail);
      body.off("close", onClose);
    };

    // Settles only when no write is in flight: the caller closes the fd next, and a write still
    // running on a closed (and perhaps reused) descriptor could land in another file.
    const settleWhenIdle = () => {
      if (settled || writing) return;
      if (failure !== undefined) {
        settled = true;
        reject(failure);
      } else if (ended) {
        settled = true;
        if (received !== size) {
          reject(new HttpError(400, `body is shorter than Content-Length (${received} of ${size} bytes)`));
        } else resolve(hash?.digest("hex"));
      }
    };

    function fail(error: unknown): void {
      if (failure !== undefined || settled) return;
      failure = error;
      queue = [];
      detach();
      // Leave the rest of an unwanted body unread; the error answer closes the connection.
      body.pause();
      settleWhenIdle();
    }

    const flush = () => {
      writing = false;
      if (failure !== undefined || queue.length === 0) {
        settleWhenIdle();
        return;
      }
      writing = true;
      const batch = queue;
      queue = [];
      queued = 0;
      if (body.isPaused() && !ended) body.resume();
      writeAll(fd, batch, (error) => {
        if (error) {
          writing = false;
          fail(error);
        } else flush();
      });
    };

    function onData(chunk: Buffer): void {
      received += chunk.length;
      if (received > size) {
        fail(new HttpError(400, "body is longer than Content-Length"));
        return;
      }
      hash?.update(chunk);
      noteBodyBytes(chunk.length);
      queue.push(chunk);
      queued += chunk.length;
      if (!writing) flush();
      else if (queued >= READ_AHEAD_BYTES) body.pause();
    }
    function onEnd(): void {
      ended = true;
      detach();
      settleWhenIdle();
    }
    function onClose(): void {
      if (!ended) fail(Object.assign(new Error("aborted"), { code: "ECONNRESET" }));
    }

    body.on("data", onData);
    body.on("end", onEnd);
    body.on("error", fail);
    body.on("close", onClose);
    // The client may have gone before the body was asked for: its 'close' has already been emitted.
    if (body.destroyed && !body.readableEnded) onClose();
  });
}

/** writev until every byte of the buffers is on the file (a short write continues where it ended). */
function writeAll(fd: number, buffers: Buffer[], done: (error: Error | null) => void): void {
  writev(fd, buffers, (error, written) => {
    if (error) return done(error);
    let rest = written;
    let index = 0;
    while (index < buffers.length && rest >= (buffers[index] as Buffer).length) {
      rest -= (buffers[index] as Buffer).length;
      index++;
    }
    if (index === buffers.length) return done(null);
    const remaining = buffers.slice(index);
    remaining[0] = (remaining[0] as Buffer).subarray(rest);
    writeAll(fd, remaining, done);
  });
}
