import { readSync, writeSync } from "node:fs";
import type { TimeSlice } from "../system/signals.js";
import { BLOCK, prepareHeader, type TarEntry, writeHeader } from "./header.js";

const BUFFER = 4 * 1024 * 1024;

function writeFully(fd: number, buffer: Buffer, length: number, position: number): void {
  let done = 0;
  while (done < length) done += writeSync(fd, buffer, done, length - done, position + done);
}

export interface WriterOptions {
  /** Called with every chunk's size as it goes out. */
  onBytes?: (bytes: number) => void;
  /** Lets the event loop run between buffers (signals, timers), and stops the work when interrupted. */
  slice?: TimeSlice;
}

/**
 * Writes archive members to a file descriptor at a position through one 4 MiB buffer: headers are
 * encoded straight into it, file content is read straight into it (no copy per chunk, no
 * allocation per file), and whole buffers go out in one pwrite. Memory stays the same whatever
 * the file or archive size.
 */
export class ArchiveWriter {
  private readonly buffer = Buffer.allocUnsafe(BUFFER);
  private used = 0;
  private readonly onBytes: (bytes: number) => void;
  readonly slice: TimeSlice | undefined;

  constructor(
    private readonly fd: number,
    private position: number,
    options: WriterOptions = {},
  ) {
    this.onBytes = options.onBytes ?? (() => {});
    this.slice = options.slice;
  }

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

  /** Zero bytes up to the next block boundary after `size` bytes of data. */
  pad(size: number): void {
    const rest = size % BLOCK;
    if (rest === 0) return;
    if (BUFFER - this.used < BLOCK) this.flush();
    this.buffer.fill(0, this.used, this.used + BLOCK - rest);
    this.used += BLOCK - rest;
  }

  /** The header block(s) of an entry. */
  writeHeader(entry: TarEntry): void {
    const header = prepareHeader(entry);
    if (header.length > BUFFER) {
      // Megabytes of xattrs: built on their own, then copied through.
      const big = Buffer.allocUnsafe(header.length);
      writeHeader(header, big, 0);
      this.write(big);
      return;
    }
    if (BUFFER - this.used < header.length) this.flush();
    writeHeader(header, this.buffer, this.used);
    this.used += header.length;
  }

  /** A whole member whose data (if any) is in memory. */
  writeEntry(entry: TarEntry, content?: Buffer): void {
    this.writeHeader(entry);
    if (entry.type !== "file" || entry.size === 0) return;
    this.write(content ?? Buffer.alloc(0));
    this.pad(entry.size);
  }

  /**
   * Copy up to `length` bytes of an open file from position `start`, synchronously, straight into
   * the buffer. It stops early when the file ends (`ended`) or when a time slice has passed after
   * a flush, so that the caller can let the event loop run and call again: small files (nearly all)
   * never make a promise.
   */
  copySome(fd: number, start: number, length: number): { copied: number; ended: boolean } {
    let copied = 0;
    while (copied < length) {
      if (this.used === BUFFER) {
        this.flush();
        if (this.slice?.due()) return { copied, ended: false };
      }
      const n = readSync(
        fd,
        this.buffer,
        this.used,
        Math.min(BUFFER - this.used, length - copied),
        start + copied,
      );
      if (n === 0) return { copied, ended: true };
      this.used += n;
      copied += n;
    }
    return { copied, ended: false };
  }

  /** Copy `length` bytes from `start`, letting the event loop run between slices; returns the bytes copied. */
  async copyFrom(fd: number, start: number, length: number): Promise<number> {
    let done = 0;
    for (;;) {
      const { copied, ended } = this.copySome(fd, start + done, length - done);
      done += copied;
      if (ended || done === length) return done;
      if (this.slice) await this.slice.pause();
    }
  }

  /** `count` zero bytes (a file that shrank while it was read is padded to its header's size). */
  zeros(count: number): void {
    let remaining = count;
    while (remaining > 0) {
      if (this.used === BUFFER) this.flush();
      const n = Math.min(BUFFER - this.used, remaining);
      this.buffer.fill(0, this.used, this.used + n);
      this.used += n;
      remaining -= n;
    }
  }

  /** Flush what is buffered; returns the position after the last byte written. */
  finish(): number {
    this.flush();
    return this.position;
  }
}
