import { createReadStream } from "node:fs";
import { encodeHeader, padding, type TarEntry } from "./header.js";

/** What to write: an entry, and for a regular file the path its content is read from (or the bytes). */
export interface WriteItem {
  entry: TarEntry;
  source?: string;
  content?: Buffer;
}

/**
 * The bytes of archive members, streamed: header, content read in chunks (never a whole file in
 * memory), padding. A file that changes size while being read is an error, not a corrupt archive.
 */
export async function* archiveBytes(
  items: AsyncIterable<WriteItem> | Iterable<WriteItem>,
): AsyncGenerator<Buffer> {
  for await (const { entry, source, content } of items) {
    yield encodeHeader(entry);
    if (entry.type !== "file" || entry.size === 0) continue;
    if (content !== undefined) {
      yield content;
      yield padding(entry.size);
      continue;
    }
    if (source === undefined) throw new Error(`${entry.name}: no content source`);
    let written = 0;
    for await (const chunk of createReadStream(source, { highWaterMark: 1024 * 1024, end: entry.size - 1 })) {
      written += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    if (written !== entry.size) {
      throw new Error(`${source} changed size while it was archived (${entry.size} -> ${written} bytes)`);
    }
    yield padding(entry.size);
  }
}
