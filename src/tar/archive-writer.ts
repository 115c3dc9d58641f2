import { closeSync, openSync, readSync, writeSync } from "node:fs";
import type { TarEntry } from "./header.js";
import { encodeHeader, padding } from "./header.js";

const BUFFER = 4 * 1024 * 1024;

/** What to write: an entry, and for a regular file the path its content is read from (or the bytes). */
export interface WriteItem {
  entry: TarEntry;
  source?: string;
  content?: Buffer;
}

function writeFully(fd: number, buffer: Buffer, length: number, position: number): void {
  let done = 0;
  while (done < length) done += writeSync(fd, buffer, done, length - done, position + done);
}

/**
 * Writes archive members to a file descriptor at a position, synchronously through one 4 MiB
 * buffer: file content is read straight into it (no copy per chunk, no allocation per file), and
 * whole buffers go out in one pwrite. Memory stays the same whatever the file or archive size.
 */
export class ArchiveWriter {
  private readonly buffer = Buffer.allocUnsafe(BUFFER);
  private used = 0;

  constructor(
    private readonly fd: number,
    private position: number,
    private readonly onBytes: (bytes: number) => void = () => {},
  ) {}

  private flush(): void {
    if (this.used === 0) return;
    writeFully(this.fd, this.buffer, this.used, this.position);
    this.position += this.used;
    this.onBytes(this.used);
    this.used = 0;
  }

  write(bytes: Buffer): void {
    let offset = 0;
    while (offset < bytes.length) {
      if (this.used === BUFFER) this.flush();
      const n = bytes.copy(this.buffer, this.used, offset);
      this.used += n;
      offset += n;
    }
  }

  /** Copy `length` bytes from an open file at `start` (or its current position when null). */
  copyFrom(fd: number, start: number | null, length: number, what: string): void {
    let remaining = length;
    let at = start;
    while (remaining > 0) {
      if (this.used === BUFFER) this.flush();
      const n = readSync(fd, this.buffer, this.used, Math.min(BUFFER - this.used, remaining), at);
      if (n === 0) throw new Error(`${what} is shorter than expected (it changed while being archived?)`);
      this.used += n;
      remaining -= n;
      if (at !== null) at += n;
    }
  }

  add(item: WriteItem): void {
    const { entry } = item;
    this.write(encodeHeader(entry));
    if (entry.type !== "file" || entry.size === 0) return;
    if (item.content !== undefined) {
      this.write(item.content);
    } else {
      if (item.source === undefined) throw new Error(`${entry.name}: no content source`);
      const fd = openSync(item.source, "r");
      try {
        this.copyFrom(fd, null, entry.size, item.source);
      } finally {
        closeSync(fd);
      }
    }
    this.write(padding(entry.size));
  }

  /** Flush what is buffered; returns the position after the last byte written. */
  finish(): number {
    this.flush();
    return this.position;
  }
}
