import fs from "node:fs";
import { OrderedWorker } from "../system/function-worker.js";
import { type ByteString, displayName, fsPath } from "../tar/names.js";
import type { Member } from "../tar/reader.js";
import { ArchiveContentError } from "./errors.js";
import { type BatchResult, fileWriting, type WriteError, writerThread } from "./file-writing.js";

/** Files per batch a thread is given, and the bytes of data after which a batch goes early. */
const BATCH_FILES = 64;
const BATCH_BYTES = 8 * 1024 * 1024;
/** Data of small files that goes with a batch (read already by the scan), at most. */
const BATCH_DATA = 256 * 1024;
/** A batch of less data than this is written by the caller's thread when every thread is busy. */
const HERE_BYTES = 2 * 1024 * 1024;

interface Batch {
  names: ByteString[];
  relatives: ByteString[];
  numbers: number[];
  bytes: number;
  /** Bytes of the staging buffer that hold data given with the batch's files (numbers' last field). */
  used: number;
  /** Extended attributes of the batch's files that have some, by index. */
  xattrs: Map<number, ReadonlyMap<string, Buffer>>;
}

function emptyBatch(): Batch {
  return { names: [], relatives: [], numbers: [], bytes: 0, used: 0, xattrs: new Map() };
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

export interface FileWritesOptions {
  archiveFd: number;
  /** Worker threads (0: every file is written on the caller's thread, as it comes). */
  threads: number;
  /** The process's umask is 0: files are created with their permission bits. */
  exactModes: boolean;
  onBytes: (bytes: number) => void;
  /** A directory is where a file goes: clear it (the caller removes trees with its own checks). */
  inTheWay: (full: ByteString, relative: ByteString) => void;
  /** A file with extended attributes is written (they are set after its content). */
  written: (full: ByteString, xattrs: ReadonlyMap<string, Buffer>) => void;
}

/**
 * The regular files of a restore, written by worker threads in batches (two waiting per thread at
 * most; when all have two, the caller's thread writes a batch of small files itself), with the
 * data of small files the scan read already. The caller stays in charge of order: `busy` tells
 * whether a path is still being written (a later member of that path, or a hard link to it, waits
 * for `drain`). The first failure is thrown by a later `add` or by `drain`, and `close` (always
 * called) stops every thread before it returns.
 */
export class FileWrites {
  private readonly writing = fileWriting(fs);
  private readonly threads: OrderedWorker[] = [];
  private readonly stop = new Int32Array(new SharedArrayBuffer(4));
  private buffer: Buffer | undefined;
  /** The data given with the batch being filled (copied out when it is sent). */
  private readonly staging = Buffer.allocUnsafe(BATCH_DATA);
  private readonly inFlight = new Map<ByteString, number>();
  private readonly waiting: Array<{ batch: Batch; answer: Promise<unknown> }> = [];
  private batch = emptyBatch();
  private next = 0;
  private failure: Error | undefined;

  constructor(private readonly options: FileWritesOptions) {
    for (let i = 0; i < options.threads; i++) {
      const data = { archiveFd: options.archiveFd, stop: this.stop.buffer, exact: options.exactModes };
      this.threads.push(new OrderedWorker(writerThread as never, data, fileWriting));
    }
  }

  /** Is a file at this path (inside the volume) queued or being written? */
  busy(relative: ByteString): boolean {
    return this.inFlight.has(relative);
  }

  /** Queue one regular file (`data`: its content, if at hand); a promise when the caller must wait. */
  add(full: ByteString, relative: ByteString, member: Member, data?: Buffer): void | Promise<void> {
    if (this.failure) throw this.failure;
    const numbers = [
      member.dataOffset,
      member.size,
      member.mode,
      member.uid,
      member.gid,
      seconds(member),
      -1,
    ];
    if (this.threads.length === 0) {
      if (data) numbers[6] = 0;
      this.writeHere(full, relative, numbers, data);
      if (member.xattrs.size > 0) this.options.written(full, member.xattrs);
      return;
    }
    const batch = this.batch;
    if (data && data.length <= BATCH_DATA - batch.used) {
      numbers[6] = batch.used;
      batch.used += data.copy(this.staging, batch.used);
    }
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
    if (this.failure) throw this.failure;
    if (this.waiting.length >= this.threads.length * 2 && batch.bytes < HERE_BYTES) {
      // Every thread has a batch waiting: this one is written here meanwhile (not one with a big
      // file, which would hold up the event loop).
      this.writeBatchHere(batch, this.staging);
      return;
    }
    const given = new ArrayBuffer(batch.used);
    this.staging.copy(Buffer.from(given));
    while (this.waiting.length >= this.threads.length * 2) await this.answer();
    if (this.failure) throw this.failure;
    const thread = this.threads[this.next] as OrderedWorker;
    this.next = (this.next + 1) % this.threads.length;
    const answer = thread.ask(
      { names: `${batch.names.join("\0")}\0`, numbers: Float64Array.from(batch.numbers), data: given },
      [given],
    );
    answer.catch(() => {});
    this.waiting.push({ batch, answer });
  }

  /** Take the oldest batch's answer (each thread answers in order; batches go round the threads). */
  private async answer(): Promise<void> {
    const { batch, answer } = this.waiting.shift() as { batch: Batch; answer: Promise<unknown> };
    try {
      const result = (await answer) as BatchResult;
      this.options.onBytes(result.bytes);
      for (let i = 0; i < result.done; i++) this.tell(batch, i);
      const error = result.error;
      if (error && !this.failure) {
        // A directory in the way (EEXIST): that file and the rest of its batch are written here.
        if (error.code !== "EEXIST") throw failureOf(error, batch.names[error.index] as ByteString);
        // (The data given went to the thread: here it is read from the archive again.)
        this.writeBatchHere(batch, undefined, error.index);
      }
    } catch (error) {
      this.failure ??= error as Error;
    } finally {
      this.settled(batch);
    }
  }

  private tell(batch: Batch, index: number): void {
    const attrs = batch.xattrs.get(index);
    if (attrs) this.options.written(batch.names[index] as ByteString, attrs);
  }

  /** Files `from` on of a batch, written on this thread (`data`: what was given with them, if here). */
  private writeBatchHere(batch: Batch, data: Buffer | undefined, from = 0): void {
    try {
      for (let i = from; i < batch.names.length; i++) {
        const numbers = batch.numbers.slice(i * 7, i * 7 + 7);
        this.writeHere(batch.names[i] as ByteString, batch.relatives[i] as ByteString, numbers, data);
        this.tell(batch, i);
      }
    } finally {
      if (from === 0) this.settled(batch);
    }
  }

  private settled(batch: Batch): void {
    for (const relative of batch.relatives) {
      const left = (this.inFlight.get(relative) ?? 1) - 1;
      if (left === 0) this.inFlight.delete(relative);
      else this.inFlight.set(relative, left);
    }
  }

  private writeHere(full: ByteString, relative: ByteString, numbers: readonly number[], data?: Buffer): void {
    this.buffer ??= Buffer.allocUnsafe(this.writing.CHUNK);
    const job = Float64Array.from(numbers);
    for (let attempt = 0; ; attempt++) {
      try {
        const { archiveFd, exactModes } = this.options;
        this.options.onBytes(
          this.writing.writeOne(fsPath(full), archiveFd, this.buffer, job, 0, data, exactModes, undefined),
        );
        return;
      } catch (error) {
        const failure = writeErrorOf(error);
        if (failure.code !== "EEXIST" || attempt > 0) throw failureOf(failure, full);
        this.options.inTheWay(full, relative);
      }
    }
  }
}
