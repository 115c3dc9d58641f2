import { readSync, write, writeSync } from "node:fs";
import type { TimeSlice } from "../system/signals.js";
import { BLOCK, END_OF_ARCHIVE, prepareHeader, type TarEntry, writeHeader } from "./header.js";

const BUFFER = 4 * 1024 * 1024;
/** Past this much of a buffer filled, the archiver lets a pending write's completion in. */
const TURN_AT = (BUFFER * 3) / 4;

function writeFully(fd: number, buffer: Buffer, length: number, position: number): void {
  let done = 0;
  while (done < length) done += writeSync(fd, buffer, done, length - done, position + done);
}

/** The same by libuv's thread pool; the promise settles when every byte is written. */
function writeFullyBehind(fd: number, buffer: Buffer, length: number, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const from = (done: number) =>
      write(fd, buffer, done, length - done, position + done, (error, written) => {
        if (error) reject(error);
        else if (done + written < length) from(done + written);
        else resolve();
      });
    from(0);
  });
}

/** A buffer being written by the thread pool. */
interface InFlight {
  buffer: Buffer;
  done: Promise<void>;
  settled: boolean;
  error?: Error;
}

export interface WriterOptions {
  /** Called with every chunk's size as it goes out. */
  onBytes?: (bytes: number) => void;
  /** Lets the event loop run between buffers (signals, timers), and stops the work when interrupted. */
  slice?: TimeSlice;
}

/**
 * Writes archive members to a file descriptor at a position through two 4 MiB buffers: headers are
 * encoded straight into one, file content is read straight into it (no copy per chunk, no
 * allocation per file), and a full buffer goes out in one pwrite by libuv's thread pool while the
 * other fills, so reading the tree and writing the archive overlap (its completion comes in at the
 * next turn of the event loop: `wantsTurn`). A buffer full while the other is still in flight is
 * written here and now instead. Memory stays the same whatever the file or archive size. `close()`
 * must always run: it waits for the write in flight.
 */
export class ArchiveWriter {
  private buffer: Buffer = Buffer.allocUnsafe(BUFFER);
  private spare: Buffer | undefined = Buffer.allocUnsafe(BUFFER);
  private nextTurnAt = TURN_AT;
  private inFlight: InFlight | undefined;
  private used = 0;
  private readonly onBytes: (bytes: number) => void;
  private readonly closers: Array<() => Promise<void>> = [];
  readonly slice: TimeSlice | undefined;

  constructor(
    private readonly fd: number,
    private position: number,
    options: WriterOptions = {},
  ) {
    this.onBytes = options.onBytes ?? (() => {});
    this.slice = options.slice;
  }

  /**
   * True when a turn of the event loop now would let the buffer in flight come back before this
   * one is full: from three quarters full on, every sixteenth of a buffer (so at most four times).
   */
  wantsTurn(): boolean {
    if (this.inFlight === undefined || this.inFlight.settled || this.used < this.nextTurnAt) return false;
    this.nextTurnAt = this.used + BUFFER / 16;
    return true;
  }

  /** The buffer in flight back, once written (its error thrown). */
  private landed(): void {
    const flight = this.inFlight;
    if (!flight?.settled) return;
    this.inFlight = undefined;
    if (flight.error) throw flight.error;
    this.spare = flight.buffer;
  }

  private flush(): void {
    if (this.used === 0) return;
    this.landed();
    const spare = this.spare;
    if (spare) {
      const flight: InFlight = {
        buffer: this.buffer,
        settled: false,
        done: writeFullyBehind(this.fd, this.buffer, this.used, this.position).then(
          () => {
            flight.settled = true;
          },
          (error: Error) => {
            flight.settled = true;
            flight.error = error;
          },
        ),
      };
      this.inFlight = flight;
      this.buffer = spare;
      this.spare = undefined;
    } else {
      writeFully(this.fd, this.buffer, this.used, this.position);
    }
    this.handedOver();
  }

  /** The buffered bytes are on their way: the next ones go after them. */
  private handedOver(): void {
    this.position += this.used;
    this.onBytes(this.used);
    this.used = 0;
    this.nextTurnAt = TURN_AT;
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

  /** Write what is buffered and wait for every write; returns the position after the last byte. */
  async finish(): Promise<number> {
    await this.inFlight?.done;
    this.landed();
    if (this.used > 0) {
      writeFully(this.fd, this.buffer, this.used, this.position);
      this.handedOver();
    }
    return this.position;
  }

  /** Something that ends with the writer (a helper thread of whoever fills it), run by `close`. */
  atClose(closer: () => Promise<void>): void {
    this.closers.push(closer);
  }

  /**
   * Wait for the write in flight, if any (always, also when the work failed; its error is
   * finish's), and end what was registered with `atClose`.
   */
  async close(): Promise<void> {
    await this.inFlight?.done;
    for (const closer of this.closers.splice(0)) await closer();
  }
}

/**
 * Members written by `work` from `position` on, then the end-of-archive marker; every write done
 * when it returns the position after the marker. The write in flight is waited for however `work`
 * ends (nothing lands after a caller's truncate).
 */
export async function writeArchive(
  fd: number,
  position: number,
  options: WriterOptions,
  work: (writer: ArchiveWriter) => Promise<void>,
): Promise<number> {
  const writer = new ArchiveWriter(fd, position, options);
  try {
    await work(writer);
    writer.write(END_OF_ARCHIVE);
    return await writer.finish();
  } finally {
    await writer.close();
  }
}
