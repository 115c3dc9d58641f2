import { read } from "node:fs";
import type { ServerResponse } from "node:http";
import { CHUNK_BYTES, giveBack, takeBuffer } from "./buffer-pool.js";

/**
 * Send `length` bytes of the file from `start` through two buffers that take turns: one is on its
 * way to the socket while the next is read. Nothing is allocated per chunk and full-size buffers are
 * reused across downloads, so a download leaves no garbage behind and holds at most two chunks.
 */
export async function sendFileRange(
  fd: number,
  res: ServerResponse,
  start: number,
  length: number,
): Promise<void> {
  const size = Math.min(CHUNK_BYTES, length);
  const buffers = [takeBuffer(size), takeBuffer(size)] as const;
  const closed = closedEarly(res);
  let previous: Promise<void> = Promise.resolve();
  try {
    for (let sent = 0, turn = 0; sent < length; turn ^= 1) {
      const buffer = buffers[turn as 0 | 1];
      const bytesRead = await readAt(fd, buffer, Math.min(size, length - sent), start + sent);
      if (bytesRead === 0) throw new Error("the file became shorter while it was being sent");
      // The buffer read next is the one the previous write used: that write must be done with it.
      await Promise.race([previous, closed.promise]);
      previous = written(res, buffer.subarray(0, bytesRead));
      sent += bytesRead;
    }
    await Promise.race([previous, closed.promise]);
  } finally {
    closed.dispose();
  }
  res.end();
  // Only once the last write has completed (awaited above) may the buffers serve another download.
  for (const buffer of buffers) giveBack(buffer);
}

/** fs.read with a callback: no FileHandle, one thread-pool round trip. */
function readAt(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buffer, 0, length, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead)));
  });
}

function written(res: ServerResponse, chunk: Buffer): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    res.write(chunk, (error) => (error ? reject(error) : resolve()));
  });
  // Awaited on the next turn; until then a failure must not count as unhandled.
  done.catch(() => {});
  return done;
}

/** Rejects when the connection closes before the response is complete. */
function closedEarly(res: ServerResponse): { promise: Promise<never>; dispose(): void } {
  let onClose = () => {};
  const promise = new Promise<never>((_, reject) => {
    onClose = () => reject(Object.assign(new Error("aborted"), { code: "ECONNRESET" }));
    res.once("close", onClose);
  });
  promise.catch(() => {});
  return { promise, dispose: () => res.off("close", onClose) };
}
