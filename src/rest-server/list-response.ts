import type { ServerResponse } from "node:http";
import type { ListEntry } from "./storage.js";
import { noteListedEntries } from "./young-gc.js";

/** Text is handed to the socket in pieces of about this size. */
const PIECE_CHARS = 64 * 1024;

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", closed);
      resolve();
    };
    const closed = () => {
      res.off("drain", done);
      reject(Object.assign(new Error("aborted"), { code: "ECONNRESET" }));
    };
    res.once("drain", done);
    res.once("close", closed);
  });
}

/**
 * Write a listing as it is found, batch by batch (chunked transfer, the socket's backpressure
 * respected): memory stays flat however many blobs there are. v1 is a JSON array of names, v2 of
 * `{"name", "size"}`. The headers go out with the first piece; a storage error after that cuts
 * the connection (the handler destroys the response), so a client never takes a partial list for a
 * whole one.
 */
export async function sendListing(
  res: ServerResponse,
  batches: AsyncIterable<ListEntry[]>,
  v2: boolean,
  headers: Record<string, string>,
): Promise<void> {
  let text = "[";
  let first = true;
  let started = false;
  const flush = async () => {
    if (!started) {
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      res.writeHead(200);
      started = true;
    }
    const piece = text;
    text = "";
    if (!res.write(piece)) await drained(res);
  };
  for await (const batch of batches) {
    for (const entry of batch) {
      const item = v2 ? `{"name":"${entry.name}","size":${entry.size}}` : `"${entry.name}"`;
      text += first ? item : `,${item}`;
      first = false;
    }
    noteListedEntries(batch.length);
    if (text.length >= PIECE_CHARS) await flush();
  }
  text += "]";
  if (!started) {
    // Small enough to send at once, with a Content-Length.
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.setHeader("Content-Length", Buffer.byteLength(text));
    res.writeHead(200);
    res.end(text);
    return;
  }
  res.end(text);
}
