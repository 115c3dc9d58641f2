import type { MessagePort } from "node:worker_threads";

/**
 * Restoring regular files from an archive, as one self-contained function (it also runs in worker
 * threads, started from its source text: it uses nothing but `fs`). A file is created new
 * (O_EXCL, never through a symlink: O_NOFOLLOW), filled with its data (given, or read from the
 * archive's descriptor: positional reads, safe from any thread), then given its owner, mode and
 * time, in that order (chown clears setuid bits). With `exact` modes (the process's umask is 0)
 * it is created with its permission bits, and only setuid/setgid/sticky bits need a chmod after
 * the chown. A non-directory in the way is unlinked and the open tried again; a directory in the
 * way is left to the caller (EEXIST), which removes trees with its own checks.
 */
export function fileWriting(fs: typeof import("node:fs")) {
  /** Per job: data offset in the archive, size, mode, uid, gid, time (s), offset in `data` or -1. */
  const FIELDS = 7;
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

  function create(path: Buffer, mode: number): number {
    try {
      return fs.openSync(path, flags, mode);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST" || fs.lstatSync(path).isDirectory()) throw error;
      fs.unlinkSync(path);
      return fs.openSync(path, flags, mode);
    }
  }

  /**
   * Job `index` of `numbers` into `path`. Returns the bytes written, or -1 when `stop[0]` was set
   * in the middle of a big file.
   */
  function writeOne(
    path: Buffer,
    archiveFd: number,
    buffer: Buffer,
    numbers: Float64Array,
    index: number,
    data: Buffer | undefined,
    exact: boolean,
    stop: Int32Array | undefined,
  ): number {
    const base = index * FIELDS;
    const offset = numbers[base] as number;
    const size = numbers[base + 1] as number;
    const mode = numbers[base + 2] as number;
    const time = numbers[base + 5] as number;
    const given = numbers[base + 6] as number;
    const fd = create(path, exact ? mode & 0o777 : 0o600);
    try {
      if (data && given >= 0) {
        let written = 0;
        while (written < size) written += fs.writeSync(fd, data, given + written, size - written);
      } else {
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
      }
      fs.fchownSync(fd, numbers[base + 3] as number, numbers[base + 4] as number);
      if (!exact || (mode & 0o7000) !== 0) fs.fchmodSync(fd, mode);
      fs.futimesSync(fd, time, time);
      return size;
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * A batch of jobs: NUL-terminated paths (latin1), their numbers and the data given with them.
   * It stops at the first failure, or when `stop[0]` is set; `done` counts the files written whole.
   */
  function writeBatch(
    archiveFd: number,
    buffer: Buffer,
    names: Buffer,
    numbers: Float64Array,
    data: Buffer,
    exact: boolean,
    stop: Int32Array | undefined,
  ): { done: number; bytes: number; error?: WriteError } {
    let start = 0;
    let done = 0;
    let bytes = 0;
    for (let nul = names.indexOf(0); nul >= 0; nul = names.indexOf(0, start)) {
      if (stop && Atomics.load(stop, 0) !== 0) break;
      try {
        const written = writeOne(
          names.subarray(start, nul),
          archiveFd,
          buffer,
          numbers,
          done,
          data,
          exact,
          stop,
        );
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
export type BatchResult = ReturnType<Writing["writeBatch"]>;
export type WriteError = NonNullable<BatchResult["error"]>;

/** A writer thread: answers each batch when its files are written (or it stopped). */
export function writerThread(
  require: NodeJS.Require,
  port: MessagePort,
  data: unknown,
  lib: typeof fileWriting,
): void {
  const writing = lib(require("node:fs"));
  const { archiveFd, stop, exact } = data as { archiveFd: number; stop: SharedArrayBuffer; exact: boolean };
  const stopped = new Int32Array(stop);
  const buffer = Buffer.allocUnsafe(writing.CHUNK);
  port.on("message", (batch: { names: string; numbers: Float64Array; data: ArrayBuffer }) => {
    const names = Buffer.from(batch.names, "latin1");
    const given = Buffer.from(batch.data);
    port.postMessage(writing.writeBatch(archiveFd, buffer, names, batch.numbers, given, exact, stopped));
  });
}
