import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { type ArchiveWriter, type WriterOptions, writeArchive } from "./archive-writer.js";
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

/**
 * Append members to an archive whose end-of-archive marker is at `end`, crash-safely: the new
 * members and a new end marker go after the old marker first (fsync), while every reader still
 * stops at the old marker; then one 1,024-byte write turns the old marker into a skip marker and
 * the new members become visible. Killed at any moment, the archive reads as before or as after.
 * `beforeCommit` runs just before that write and may still refuse it (throw), e.g. a lost lock.
 */
export async function appendToArchive(
  file: string,
  end: number,
  writeMembers: (writer: ArchiveWriter) => Promise<void>,
  options: WriterOptions & { beforeCommit?: () => void } = {},
): Promise<void> {
  const fd = openSync(file, "r+");
  try {
    if (fstatSync(fd).size < end + END_OF_ARCHIVE.length) {
      // A bare or short marker (e.g. an empty file): complete it first, so the old state stays readable.
      writeSync(fd, END_OF_ARCHIVE, 0, END_OF_ARCHIVE.length, end);
    }
    try {
      const tail = await writeArchive(fd, end + END_OF_ARCHIVE.length, options, writeMembers);
      ftruncateSync(fd, tail);
      fsyncSync(fd);
      options.beforeCommit?.();
    } catch (error) {
      // Not committed: what was written past the old marker is invisible; give the space back.
      try {
        ftruncateSync(fd, end + END_OF_ARCHIVE.length);
      } catch {
        // The space stays used; the archive still reads as before.
      }
      throw error;
    }
    const marker = skipMarker();
    writeSync(fd, marker, 0, marker.length, end);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
