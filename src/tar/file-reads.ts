import fs from "node:fs";
import type { MessagePort } from "node:worker_threads";
import { OrderedWorker } from "../system/function-worker.js";
import { type ByteString, fsPath } from "./names.js";

/**
 * Opening and reading regular files for an archive, as one self-contained function (it also runs in
 * a worker thread, started from its source text: it uses nothing but `fs`). Each file's outcome goes
 * into a slot of shared memory: numbers in `meta` (FIELDS per file), device and inode in `ids`, the
 * content in `data` when it fits. A file whose content does not fit stays open for the caller.
 *
 * O_NONBLOCK: a file replaced by a FIFO meanwhile must not block the open. O_NOATIME: the backup
 * leaves access times as they were (GNU tar's --atime-preserve=system); allowed for the file's owner
 * and for root, so a file of someone else is opened again without it.
 */
export function fileReading(fs: typeof import("node:fs")) {
  const SLOT_FILES = 512;
  const SLOT_DATA = 1024 * 1024;
  const FIELDS = 14;
  /** Outcomes (meta field 0): content read; left open for the caller; not a regular file (any more). */
  const READ = 0;
  const OPEN = 1;
  const NOT_FILE = 2;
  const FAILED = 3;
  const flags = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
  const noatime = fs.constants.O_NOATIME ?? 0;

  interface Slot {
    meta: Float64Array;
    ids: BigUint64Array;
    data: Buffer;
  }
  interface ReadError {
    index: number;
    code?: string;
    errno?: number;
    syscall?: string;
    message: string;
  }

  function slotOf(shared: SharedArrayBuffer, files = SLOT_FILES): Slot {
    const metaBytes = files * FIELDS * 8;
    return {
      meta: new Float64Array(shared, 0, files * FIELDS),
      ids: new BigUint64Array(shared, metaBytes, files * 2),
      data: Buffer.from(shared, metaBytes + files * 16),
    };
  }

  function newSlot(files = SLOT_FILES, data = SLOT_DATA): SharedArrayBuffer {
    return new SharedArrayBuffer(files * (FIELDS * 8 + 16) + data);
  }

  function open(path: Buffer): number {
    try {
      return fs.openSync(path, flags | noatime);
    } catch (error) {
      if (noatime === 0 || (error as NodeJS.ErrnoException).code !== "EPERM") throw error;
      return fs.openSync(path, flags);
    }
  }

  /** Seconds and nanoseconds of a time in nanoseconds (before 1970 the remainder borrows a second). */
  function split(ns: bigint): [number, number] {
    const seconds = ns / 1_000_000_000n;
    const rest = ns % 1_000_000_000n;
    return rest < 0n
      ? [Number(seconds - 1n), Number(rest + 1_000_000_000n)]
      : [Number(seconds), Number(rest)];
  }

  /** Node's Stats.*Ms for a time in nanoseconds, computed as Node computes it. */
  function milliseconds(ns: bigint): number {
    const [seconds, nanoseconds] = split(ns);
    return seconds * 1e3 + nanoseconds / 1e6;
  }

  /**
   * After `copied` bytes of a file of `size` bytes were read: its size now when it grew, -1 when it
   * changed otherwise, 0 when it did not (or shrank: the caller sees that from `copied`). As GNU
   * tar: size, mtime or ctime moved (a cheap non-BigInt fstat, the times as Node computes its
   * milliseconds from the nanoseconds the open file had).
   */
  function changeOf(fd: number, size: number, copied: number, mtimeMs: number, ctimeMs: number): number {
    if (copied < size) return 0;
    const after = fs.fstatSync(fd);
    if (after.size === size && after.mtimeMs === mtimeMs && after.ctimeMs === ctimeMs) return 0;
    return after.size > size ? after.size : -1;
  }

  /**
   * Open, describe and (when it fits in `data` from `at` to `end`) read one file into record
   * `index` of the slot; returns where the next file's content goes. Failures go to `errors`.
   */
  function readOne(
    path: Buffer,
    index: number,
    slot: Slot,
    at: number,
    end: number,
    errors: ReadError[],
  ): number {
    const meta = slot.meta;
    const base = index * FIELDS;
    let fd = -1;
    try {
      fd = open(path);
      const stat = fs.fstatSync(fd, { bigint: true });
      meta[base + 1] = fd;
      if (!stat.isFile()) {
        meta[base] = NOT_FILE;
        fs.closeSync(fd);
        return at;
      }
      const size = Number(stat.size);
      const [seconds, nanoseconds] = split(stat.mtimeNs);
      meta[base + 2] = size;
      meta[base + 3] = Number(stat.mode & 0o7777n);
      meta[base + 4] = Number(stat.uid);
      meta[base + 5] = Number(stat.gid);
      meta[base + 6] = seconds;
      meta[base + 7] = nanoseconds;
      meta[base + 8] = Number(stat.nlink);
      meta[base + 12] = milliseconds(stat.mtimeNs);
      meta[base + 13] = milliseconds(stat.ctimeNs);
      slot.ids[index * 2] = stat.dev;
      slot.ids[index * 2 + 1] = stat.ino;
      if (size > end - at) {
        meta[base] = OPEN;
        return at;
      }
      let copied = 0;
      while (copied < size) {
        const n = fs.readSync(fd, slot.data, at + copied, size - copied, copied);
        if (n === 0) break;
        copied += n;
      }
      meta[base] = READ;
      meta[base + 9] = at;
      meta[base + 10] = copied;
      meta[base + 11] = changeOf(fd, size, copied, meta[base + 12] as number, meta[base + 13] as number);
      fs.closeSync(fd);
      return at + copied;
    } catch (error) {
      if (fd >= 0) fs.closeSync(fd);
      const { code, errno, syscall, message } = error as NodeJS.ErrnoException;
      meta[base] = FAILED;
      errors.push({
        index,
        message,
        ...(code ? { code } : {}),
        ...(errno ? { errno } : {}),
        ...(syscall ? { syscall } : {}),
      });
      return at;
    }
  }

  /** A request of the thread: NUL-terminated names (latin1) into slot `slot`. */
  function readBatch(names: Buffer, slot: Slot): ReadError[] {
    const errors: ReadError[] = [];
    let at = 0;
    let start = 0;
    let index = 0;
    for (let nul = names.indexOf(0); nul >= 0; nul = names.indexOf(0, start)) {
      at = readOne(names.subarray(start, nul), index++, slot, at, slot.data.length, errors);
      start = nul + 1;
    }
    return errors;
  }

  return { SLOT_FILES, FIELDS, READ, OPEN, NOT_FILE, FAILED, slotOf, newSlot, readOne, readBatch, changeOf };
}

type Reading = ReturnType<typeof fileReading>;
type Slot = ReturnType<Reading["slotOf"]>;
type ReadError = ReturnType<Reading["readBatch"]>[number];

/** The reader thread: answers each request (a slot and the names to read into it) when done. */
function readerThread(
  require: NodeJS.Require,
  port: MessagePort,
  data: unknown,
  lib: typeof fileReading,
): void {
  const reading = lib(require("node:fs"));
  const slots = (data as SharedArrayBuffer[]).map((shared) => reading.slotOf(shared));
  port.on("message", (request: { slot: number; names: string }) => {
    const slot = slots[request.slot] as Slot;
    port.postMessage(reading.readBatch(Buffer.from(request.names, "latin1"), slot));
  });
}

/** One file as read (see FileReads.next). */
export interface FileRead {
  /** "open": `fd` is open and its content still to be read, from 0 (the caller closes it). */
  kind: "read" | "open" | "not-file";
  fd: number;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: { seconds: number; nanoseconds: number };
  /** `dev:inode`, for a file with more than one link. */
  linkKey: string | undefined;
  /** "read": the content as read (valid until the next call of `next`). */
  data: Buffer | undefined;
  /** "read": its size now if it grew while read, -1 if it changed otherwise, else 0. */
  change: number;
  /** Its mtime and ctime when opened, as Node's milliseconds (for `changeOf`). */
  mtimeMs: number;
  ctimeMs: number;
}

/**
 * Regular files opened and read in the order they are pushed, each told by `next` in that order.
 * At first on the caller's thread, as it asks; after `useThread`, by a worker thread that reads
 * up to two slots of files ahead while the caller writes the ones before them into the archive.
 * Failures come as the system errors they are (ENOENT for a file gone, and so on).
 */
export class FileReads {
  private readonly reading = fileReading(fs);
  /** The caller's own one-file slot: no room for content, so every file comes back open. */
  private readonly own = this.reading.slotOf(this.reading.newSlot(1, 0), 1);
  private readonly queue: ByteString[] = [];
  private queueStart = 0;
  private thread: OrderedWorker | undefined;
  private slots: Slot[] = [];
  private readonly free: number[] = [];
  private readonly asked: Array<{ slot: number; count: number; answer: Promise<unknown> }> = [];
  private current: { slot: number; count: number; index: number; errors: Map<number, ReadError> } | undefined;

  /** Read ahead in a worker thread from now on. */
  useThread(): void {
    if (this.thread) return;
    const shared = [this.reading.newSlot(), this.reading.newSlot()];
    this.slots = shared.map((one) => this.reading.slotOf(one));
    this.thread = new OrderedWorker(readerThread as never, shared, fileReading);
    this.free.push(0, 1);
    this.ask();
  }

  push(paths: readonly ByteString[]): void {
    for (const path of paths) this.queue.push(path);
    this.ask();
  }

  /** The next pushed file, read. */
  next(): FileRead | Promise<FileRead> {
    if (!this.thread) {
      const errors: ReadError[] = [];
      this.reading.readOne(fsPath(this.take(1)[0] as ByteString), 0, this.own, 0, 0, errors);
      return this.record(this.own, 0, errors[0]);
    }
    const current = this.current;
    if (current && current.index < current.count)
      return this.record(
        this.slots[current.slot] as Slot,
        current.index++,
        current.errors.get(current.index - 1),
      );
    return this.advance().then(() => this.next());
  }

  /** Wait for the thread's reads in flight, close what they left open, end the thread. */
  async close(): Promise<void> {
    if (!this.thread) return;
    this.release();
    for (const { slot, count, answer } of this.asked.splice(0)) {
      const errors = await answer.catch(() => undefined);
      if (errors) this.closeOpen(slot, 0, count);
    }
    await this.thread.stop();
  }

  private take(count: number): ByteString[] {
    const taken = this.queue.slice(this.queueStart, this.queueStart + count);
    this.queueStart += taken.length;
    if (this.queueStart > 4096 && this.queueStart * 2 > this.queue.length) {
      this.queue.splice(0, this.queueStart);
      this.queueStart = 0;
    }
    return taken;
  }

  /** Send waiting names to the thread while a slot is free. */
  private ask(): void {
    const thread = this.thread;
    if (!thread) return;
    while (this.free.length > 0 && this.queueStart < this.queue.length) {
      const slot = this.free.shift() as number;
      const names = this.take(this.reading.SLOT_FILES);
      const answer = thread.ask({ slot, names: `${names.join("\0")}\0` });
      answer.catch(() => {});
      this.asked.push({ slot, count: names.length, answer });
    }
  }

  /** The current slot is done with: it goes back to the thread; the next answered one is current. */
  private async advance(): Promise<void> {
    this.release();
    const next = this.asked.shift();
    if (!next) throw new Error("FileReads: next() without a pushed file");
    const errors = (await next.answer) as ReadError[];
    this.current = {
      slot: next.slot,
      count: next.count,
      index: 0,
      errors: new Map(errors.map((error) => [error.index, error])),
    };
  }

  private release(): void {
    const current = this.current;
    if (!current) return;
    this.closeOpen(current.slot, current.index, current.count);
    this.current = undefined;
    this.free.push(current.slot);
    this.ask();
  }

  /** Descriptors of records never told (an error stopped the caller) are closed here. */
  private closeOpen(slot: number, from: number, to: number): void {
    const meta = (this.slots[slot] as Slot).meta;
    for (let index = from; index < to; index++) {
      const base = index * this.reading.FIELDS;
      if (meta[base] === this.reading.OPEN) fs.closeSync(meta[base + 1] as number);
    }
  }

  private record(slot: Slot, index: number, error: ReadError | undefined): FileRead {
    if (error) throw Object.assign(new Error(error.message), error);
    const meta = slot.meta;
    const base = index * this.reading.FIELDS;
    const outcome = meta[base] as number;
    const nlink = meta[base + 8] as number;
    const read = outcome === this.reading.READ;
    return {
      kind: read ? "read" : outcome === this.reading.OPEN ? "open" : "not-file",
      fd: meta[base + 1] as number,
      size: meta[base + 2] as number,
      mode: meta[base + 3] as number,
      uid: meta[base + 4] as number,
      gid: meta[base + 5] as number,
      mtime: { seconds: meta[base + 6] as number, nanoseconds: meta[base + 7] as number },
      linkKey: nlink > 1 ? `${slot.ids[index * 2]}:${slot.ids[index * 2 + 1]}` : undefined,
      data: read
        ? slot.data.subarray(meta[base + 9], (meta[base + 9] as number) + (meta[base + 10] as number))
        : undefined,
      change: read ? (meta[base + 11] as number) : 0,
      mtimeMs: meta[base + 12] as number,
      ctimeMs: meta[base + 13] as number,
    };
  }

  /** After the caller read `copied` bytes of an "open" file itself: as FileRead.change. */
  changeOf(read: FileRead, copied: number): number {
    return this.reading.changeOf(read.fd, read.size, copied, read.mtimeMs, read.ctimeMs);
  }
}
