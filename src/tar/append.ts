import { type FileHandle, open } from "node:fs/promises";
import { BLOCK, END_OF_ARCHIVE } from "./header.js";

/**
 * A pax global header whose one comment record fills its 512-byte data block exactly: 1,024 bytes
 * that every tar reader steps over (GNU tar, Go's archive/tar, Python's tarfile list nothing).
 */
export function skipMarker(): Buffer {
  const text = "stowage: members appended below";
  const record = Buffer.alloc(BLOCK, 0x20);
  const head = `512 comment=${text}`;
  record.write(head, 0, "ascii");
  record[BLOCK - 1] = 0x0a;
  const header = Buffer.alloc(BLOCK);
  header.write("pax_global_header", 0, "ascii");
  header.write("0000644\0", 100, "ascii");
  header.write("0000000\0", 108, "ascii");
  header.write("0000000\0", 116, "ascii");
  header.write(`${BLOCK.toString(8).padStart(11, "0")}\0`, 124, "ascii");
  header.write("00000000000\0", 136, "ascii");
  header.fill(0x20, 148, 156);
  header.write("g", 156, "ascii");
  header.write("ustar\x0000", 257, "binary");
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return Buffer.concat([header, record]);
}

async function writeAll(handle: FileHandle, chunks: AsyncIterable<Buffer>, start: number): Promise<number> {
  let position = start;
  for await (const chunk of chunks) {
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, position);
      done += bytesWritten;
      position += bytesWritten;
    }
  }
  return position;
}

/**
 * Append members to an archive whose end-of-archive marker is at `end`, crash-safely: the new
 * members and a new end marker go after the old marker first (fsync), while every reader still
 * stops at the old marker; then one 1,024-byte write turns the old marker into a skip marker and
 * the new members become visible. Killed at any moment, the archive reads as before or as after.
 */
export async function appendToArchive(
  file: string,
  end: number,
  members: AsyncIterable<Buffer>,
): Promise<void> {
  const handle = await open(file, "r+");
  try {
    const { size } = await handle.stat();
    if (size < end + END_OF_ARCHIVE.length) {
      // A bare or short marker (e.g. an empty file): complete it first, so the old state stays readable.
      await handle.write(END_OF_ARCHIVE, 0, END_OF_ARCHIVE.length, end);
    }
    const tail = await writeAll(handle, members, end + END_OF_ARCHIVE.length);
    await handle.write(END_OF_ARCHIVE, 0, END_OF_ARCHIVE.length, tail);
    await handle.truncate(tail + END_OF_ARCHIVE.length);
    await handle.sync();
    const marker = skipMarker();
    await handle.write(marker, 0, marker.length, end);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
