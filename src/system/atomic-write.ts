import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { isErrno } from "./errors.js";

/** The content, or a function that writes it to the temp file's descriptor itself. */
export type AtomicWriteData =
  | string
  | Uint8Array
  | AsyncIterable<Uint8Array | string>
  | ((fd: number) => void | Promise<void>);

export interface AtomicWriteOptions {
  /** Permission bits of the new file (applied exactly, regardless of umask). */
  mode?: number;
  /** When the file exists, give the new one the old one's uid/gid (and its mode, unless `mode` is set). */
  keepOwnership?: boolean;
  /**
   * A fixed temp name (e.g. `config.json.new`) instead of a random hidden one. The caller holds a
   * lock, so one left behind by a crash is simply overwritten.
   */
  temp?: string;
  /** Runs after the new content is durable, just before the rename; throwing cancels the write. */
  beforeCommit?: () => void;
}

/** Make a rename in this directory durable. */
export async function fsyncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A temp name beside the target, so the final rename stays on one filesystem and is atomic. */
export function tempNameFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${randomBytes(6).toString("hex")}`);
}

async function writeAll(handle: FileHandle, data: AtomicWriteData): Promise<void> {
  if (typeof data === "function") {
    await data(handle.fd);
    return;
  }
  if (typeof data === "string" || data instanceof Uint8Array) {
    await handle.writeFile(data);
    return;
  }
  for await (const chunk of data) await handle.write(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
}

async function existingStat(file: string) {
  try {
    return await stat(file);
  } catch (error) {
    if (isErrno(error, "ENOENT")) return undefined;
    throw error;
  }
}

/**
 * Replace `file` so that readers see either the complete old or the complete new content, even
 * after a crash: temp file in the same directory, fsync, rename, fsync the directory.
 */
export async function writeFileAtomic(
  file: string,
  data: AtomicWriteData,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const temp = options.temp ?? tempNameFor(file);
  const previous = options.keepOwnership ? await existingStat(file) : undefined;
  const handle = await open(temp, options.temp ? "w" : "wx", 0o600);
  let renamed = false;
  try {
    await writeAll(handle, data);
    if (previous) await handle.chown(previous.uid, previous.gid);
    const mode = options.mode ?? (previous ? previous.mode & 0o7777 : 0o666 & ~process.umask());
    await handle.chmod(mode);
    await handle.sync();
    await handle.close();
    options.beforeCommit?.();
    await rename(temp, file);
    renamed = true;
    await fsyncDirectory(path.dirname(file));
  } finally {
    if (!renamed) {
      await handle.close().catch(() => {});
      await unlink(temp).catch(() => {});
    }
  }
}
