import fs from "node:fs";
import type { MessagePort } from "node:worker_threads";
import { OrderedWorker } from "../system/function-worker.js";
import { type ByteString, displayName, fsPath } from "../tar/names.js";
import type { Member } from "../tar/reader.js";
import { ArchiveContentError } from "./errors.js";

/**
 * Restoring regular files from an archive, as one self-contained function (it also runs in worker
 * threads, started from its source text: it uses nothing but `fs`). A file is created new
 * (O_EXCL, never through a symlink: O_NOFOLLOW), filled from the archive's descriptor (positional
 * reads, safe from any thread), then given its owner, mode and time, in that order (chown clears
 * setuid bits). A non-directory in the way is unlinked and the open tried again; a directory in
 * the way is left to the caller (EEXIST), which removes trees with its own checks.
 */
export function fileWriting(fs: typeof import("node:fs")) {
  const FIELDS = 6;
  const CHUNK = 1024 * 1024;
  const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

  interface WriteError {
    index: number;
    message: string;
    code?: string;
    errno?: number;
    syscall?: string;
    /** The archive ended inside this file's data. */
    truncated?: boolean;
  }

  function create(path: Buffer): number {
    try {
      return fs.openSync(path, flags, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST" || fs.lstatSync(path).isDirectory()) throw error;
      fs.unlinkSync(path);
      return fs.openSync(path, flags, 0o600);
    }
  }

  /**
   * Job `index` of `numbers` (data offset, size, mode, uid, gid, time in seconds) into `path`.
   * Returns the bytes written, or -1 when `stop[0]` was set in the middle of a big file.
   */
  function writeOne(
    path: Buffer,
    archiveFd: number,
    buffer: Buffer,
    numbers: Float64Array,
    index: number,
    stop: Int32Array | undefined,
  ): number {
    const base = index * FIELDS;
    const offset = numbers[base] as number;
    const size = numbers[base + 1] as number;
    const time = numbers[base + 5] as number;
    const fd = create(path);
    try {
      let done = 0;
      while (done < size) {
        if (stop && Atomics.load(stop, 0) !== 0) return -1;
        const want = Math.min(buffer.length, size - done);
        const got = fs.readSync(archiveFd, buffer, 0, want, offset + done);
        if (got !== want)
          throw Object.assign(new Error("archive ended inside the data"), { truncated: true });
        let written = 0;
        while (written < got) written += fs.writeSync(fd, buffer, written, got - written);
        done += got;
      }
      fs.fchownSync(fd, numbers[base + 3] as number, numbers[base + 4] as number);
      fs.fchmodSync(fd, numbers[base + 2] as number);
      fs.futimesSync(fd, time, time);
      return size;
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * A batch of jobs: NUL-terminated paths (latin1) and their numbers. It stops at the first
   * failure, or when `stop[0]` is set; `done` counts the files written whole.
   */
  function writeBatch(
    archiveFd: number,
    buffer: Buffer,
    names: Buffer,
    numbers: Float64Array,
    stop: Int32Array | undefined,
  ): { done: number; bytes: number; error?: WriteError } {
    let start = 0;
    let done = 0;
    let bytes = 0;
    for (let nul = names.indexOf(0); nul >= 0; nul = names.indexOf(0, start)) {
      if (stop && Atomics.load(stop, 0) !== 0) break;
      try {
        const written = writeOne(names.subarray(start, nul), archiveFd, buffer, numbers, done, stop);
        if (written < 0) break;
        bytes += written;
      } catch (error) {
        const { code, errno, syscall, message, truncated } = error as NodeJS.ErrnoException & {
          truncated?: boolean;
        };
        return {
          done,
          bytes,
          error: {
            index: done,
            message,
            ...(code ? { code } : {}),
            ...(errno ? { errno } : {}),
            ...(syscall ? { syscall } : {}),
            ...(truncated ? { truncated } : {}),
          },
        };
      }
      done++;
      start = nul + 1;
    }
    return { done, bytes };
  }

  return { FIELDS, CHUNK, writeOne, writeBatch };
}

type Writing = ReturnType<typeof fileWriting>;
type BatchResult = ReturnType<Writing["writeBatch"]>;

/** A writer thread: answers each batch when its files are written (or it stopped). */
function writerThread(
  require: NodeJS.Require,
  port: MessagePort,
  data: unknown,
  lib: typeof fileWriting,
): void {
  const writing = lib(require("node:fs"));
  const { archiveFd, stop } = data as { archiveFd: number; stop: SharedArrayBuffer };
  const stopped = new Int32Array(stop);
  const buffer = Buffer.allocUnsafe(writing.CHUNK);
  port.on("message", (batch: { names: string; numbers: Float64Array }) => {
    const names = Buffer.from(batch.names, "latin1");
    port.postMessage(writing.writeBatch(archiveFd, buffer, names, batch.numbers, stopped));
  });
}

/** Files per batch a thread is given, and the bytes of data after which a batch goes early. */
const BATCH_FILES = 64;
const BATCH_BYTES = 8 * 1024 * 1024;

interface Batch {
  names: ByteString[];
  relatives: ByteString[];
  numbers: number[];
  bytes: number;
  /** Extended attributes of the batch's files that have some, by index. */
  xattrs: Map<number, ReadonlyMap<string, Buffer>>;
}

const seconds = (member: Member) => member.mtime.seconds + member.mtime.nanoseconds / 1e9;

/** A failure told by `writeOne` or a thread, as the error it was (a system error stays one). */
function failureOf(error: WriteError, full: ByteString): Error {
  if (error.truncated) return new ArchiveContentError(`${displayName(full)}: archive ended inside the data`);
  const { message, code, errno, syscall } = error;
  return Object.assign(new Error(`${message} (restoring ${displayName(full)})`), {
    ...(code ? { code } : {}),
    ...(errno ? { errno } : {}),
    ...(syscall ? { syscall } : {}),
  });
}

function writeErrorOf(error: unknown): WriteError {
  const { code, errno, syscall, message, truncated } = error as NodeJS.ErrnoException & {
    truncated?: boolean;
  };
  return {
    index: 0,
    message,
    ...(code ? { code } : {}),
    ...(errno ? { errno } : {}),
    ...(syscall ? { syscall } : {}),
    ...(truncated ? { truncated } : {}),
  };
}

/**
 * The regular files of a restore, written by `threads` worker threads (0: here, as they come), in
 * batches, two at most waiting per thread. The caller stays in charge of order: `busy` tells
 * whether a path is still being written (a later member of that path, or a hard link to it, waits
 * for `drain`). The first failure is thrown by a later `add` or by `drain`, and `close` (always
 * called) stops every thread before it returns. A directory in a file's way is given to `inTheWay`
 * (the caller removes trees with its own checks); that file is then written here. `written` is
 * told each file with extended attributes once it is written (they are set after its content).
 */
export class FileWrites {
  private readonly writing = fileWriting(fs);
  private readonly threads: OrderedWorker[] = [];
  private readonly stop = new Int32Array(new SharedArrayBuffer(4));
  private buffer: Buffer | undefined;
  private readonly inFlight = new Map<ByteString, number>();
  private readonly waiting: Array<{ batch: Batch; answer: Promise<unknown> }> = [];
  private batch = emptyBatch();
  private next = 0;
  private failure: Error | undefined;

  constructor(
    private readonly archiveFd: number,
    threads: number,
    private readonly onBytes: (bytes: number) => void,
    private readonly inTheWay: (full: ByteString, relative: ByteString) => void,
    private readonly written: (full: ByteString, xattrs: ReadonlyMap<string, Buffer>) => void,
  ) {
    for (let i = 0; i < threads; i++) {
      const data = { archiveFd, stop: this.stop.buffer };
      this.threads.push(new OrderedWorker(writerThread as never, data, fileWriting));
    }
  }

  /** Is a file at this path (inside the volume) queued or being written? */
  busy(relative: ByteString): boolean {
    return this.inFlight.has(relative);
  }

  /** Queue one regular file; a promise when the caller must first wait for a thread. */
  add(full: ByteString, relative: ByteString, member: Member): void | Promise<void> {
    if (this.failure) throw this.failure;
    const numbers = [member.dataOffset, member.size, member.mode, member.uid, member.gid, seconds(member)];
    if (this.threads.length === 0) {
      this.writeHere(full, relative, numbers);
      if (member.xattrs.size > 0) this.written(full, member.xattrs);
      return;
    }
    const batch = this.batch;
    if (member.xattrs.size > 0) batch.xattrs.set(batch.names.length, member.xattrs);
    batch.names.push(full);
    batch.relatives.push(relative);
    for (const number of numbers) batch.numbers.push(number);
    batch.bytes += member.size;
    this.inFlight.set(relative, (this.inFlight.get(relative) ?? 0) + 1);
    if (batch.names.length >= BATCH_FILES || batch.bytes >= BATCH_BYTES) return this.send();
  }

  /** Every queued file written (or the first failure thrown). */
  async drain(): Promise<void> {
    if (this.batch.names.length > 0) await this.send();
    while (this.waiting.length > 0) await this.answer();
    if (this.failure) throw this.failure;
  }

  /**
   * What is queued is dropped, the threads stop between files (or between chunks of a big one)
   * and end once they did: nothing is written after this returns.
   */
  async close(): Promise<void> {
    Atomics.store(this.stop, 0, 1);
    this.batch = emptyBatch();
    while (this.waiting.length > 0) await this.answer().catch(() => {});
    for (const thread of this.threads) await thread.stop();
  }

  /** Give the batch to the next thread, after waiting for an answer when each has two. */
  private async send(): Promise<void> {
    const batch = this.batch;
    this.batch = emptyBatch();
    while (this.waiting.length >= this.threads.length * 2) await this.answer();
    if (this.failure) throw this.failure;
    const thread = this.threads[this.next] as OrderedWorker;
    this.next = (this.next + 1) % this.threads.length;
    const answer = thread.ask({
      names: `${batch.names.join("\0")}\0`,
      numbers: Float64Array.from(batch.numbers),
    });
    answer.catch(() => {});
    this.waiting.push({ batch, answer });
  }

  /** Take the oldest batch's answer (each thread answers in order; batches go round the threads). */
  private async answer(): Promise<void> {
    const { batch, answer } = this.waiting.shift() as { batch: Batch; answer: Promise<unknown> };
    try {
      const result = (await answer) as BatchResult;
      this.onBytes(result.bytes);
      const tell = (index: number) => {
        const attrs = batch.xattrs.get(index);
        if (attrs) this.written(batch.names[index] as ByteString, attrs);
      };
      for (let i = 0; i < result.done; i++) tell(i);
      const error = result.error;
      if (error && !this.failure) {
        // A directory in the way (EEXIST): that file and the rest of its batch are written here.
        if (error.code !== "EEXIST") throw failureOf(error, batch.names[error.index] as ByteString);
        for (let i = error.index; i < batch.names.length; i++) {
          const numbers = batch.numbers.slice(i * 6, i * 6 + 6);
          this.writeHere(batch.names[i] as ByteString, batch.relatives[i] as ByteString, numbers);
          tell(i);
        }
      }
    } catch (error) {
      this.failure ??= error as Error;
    } finally {
      for (const relative of batch.relatives) {
        const left = (this.inFlight.get(relative) ?? 1) - 1;
        if (left === 0) this.inFlight.delete(relative);
        else this.inFlight.set(relative, left);
      }
    }
  }

  private writeHere(full: ByteString, relative: ByteString, numbers: readonly number[]): void {
    this.buffer ??= Buffer.allocUnsafe(this.writing.CHUNK);
    const jobs = Float64Array.from(numbers);
    for (let attempt = 0; ; attempt++) {
      try {
        this.onBytes(this.writing.writeOne(fsPath(full), this.archiveFd, this.buffer, jobs, 0, undefined));
        return;
      } catch (error) {
        const failure = writeErrorOf(error);
        if (failure.code !== "EEXIST" || attempt > 0) throw failureOf(failure, full);
        this.inTheWay(full, relative);
      }
    }
  }
}

type WriteError = NonNullable<BatchResult["error"]>;

function emptyBatch(): Batch {
  return { names: [], relatives: [], numbers: [], bytes: 0, xattrs: new Map() };
}
