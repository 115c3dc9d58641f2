import { randomBytes } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, statSync } from "node:fs";
import { chmod, type FileHandle, link, lstat, mkdir, open, readdir, stat, unlink } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { fsyncDirectory } from "../system/atomic-write.js";
import { isErrno } from "../system/errors.js";
import { nextTurn } from "../system/signals.js";
import { writeBody } from "./body-writer.js";
import { HttpError, storageError } from "./http-error.js";
import { parseRange } from "./range.js";
import {
  BLOB_TYPES,
  type BlobType,
  isBlobId,
  type ObjectType,
  objectSegments,
  repoOfStoredPath,
} from "./repo-path.js";
import { sendFileRange } from "./send-file.js";
import {
  findRepositories,
  type ListEntry,
  type ObjectRef,
  type OpenedObject,
  type SaveExpect,
  type SaveOutcome,
  type Storage,
  type StoredBytes,
} from "./storage.js";

const TEMP_PREFIX = ".tmp-";
/** Entries stat'ed synchronously in one go before the event loop gets a turn (about 1 ms). */
const STAT_BATCH = 512;

export interface FsStorageOptions {
  /** 0770/0660 instead of 0700/0600, for a group that shares the repositories. */
  groupAccessible: boolean;
}

/** The path (or a directory on the way to it) does not exist. */
function isMissing(error: unknown): boolean {
  return isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR");
}

function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

/** Repositories on disk, in the layout of restic's local backend and rest-server. */
export class FsStorage implements Storage {
  readonly dirMode: number;
  readonly fileMode: number;

  constructor(
    readonly root: string,
    options: FsStorageOptions,
  ) {
    this.dirMode = options.groupAccessible ? 0o770 : 0o700;
    this.fileMode = options.groupAccessible ? 0o660 : 0o600;
  }

  get location(): string {
    return this.root;
  }

  async prepare(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: this.dirMode });
  }

  private repoDir(repo: readonly string[]): string {
    return path.join(this.root, ...repo);
  }

  private file(ref: ObjectRef): string {
    return this.objectPath(ref.repo, ref.type, ref.name);
  }

  private objectPath(repo: readonly string[], type: ObjectType, name?: string): string {
    return path.join(this.repoDir(repo), ...objectSegments(type, name));
  }

  private async makeDir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: this.dirMode });
    // mkdir's mode is filtered by the umask; group access must be set explicitly.
    if (this.dirMode & 0o070) await chmod(dir, this.dirMode);
  }

  /** Create the repository's directories (idempotent), including data/00..ff. */
  async createRepo(repo: readonly string[]): Promise<void> {
    const dir = this.repoDir(repo);
    // Each level, so intermediate directories (alice/ of alice/laptop/) get the mode too.
    for (let depth = 0; depth <= repo.length; depth++) await this.makeDir(this.repoDir(repo.slice(0, depth)));
    for (const type of BLOB_TYPES) await this.makeDir(path.join(dir, type));
    const data = path.join(dir, "data");
    for (let i = 0; i < 256; i++) await this.makeDir(path.join(data, i.toString(16).padStart(2, "0")));
  }

  async repoExists(repo: readonly string[]): Promise<boolean> {
    try {
      return (await stat(this.repoDir(repo))).isDirectory();
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  /** Size of a stored object, or undefined when absent. */
  async size(ref: ObjectRef): Promise<number | undefined> {
    return this.sizeOf(this.file(ref));
  }

  private async sizeOf(file: string): Promise<number | undefined> {
    try {
      const info = await stat(file);
      return info.isFile() ? info.size : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  /**
   * Blob names and sizes of a type, batch by batch as the directories are read, or undefined when
   * the type's directory does not exist. Sizes come from stat calls made synchronously in batches of
   * STAT_BATCH (a thread-pool round trip per file costs more than the call), the event loop getting
   * a turn between batches.
   */
  async list(
    repo: readonly string[],
    type: BlobType,
    withSizes: boolean,
  ): Promise<AsyncIterable<ListEntry[]> | undefined> {
    const dir = this.objectPath(repo, type);
    let top: string[];
    try {
      top = await readdir(dir);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    return listBatches(dir, type, top, withSizes);
  }

  /**
   * Store an upload under its final name without ever exposing a partial file: a hidden temp file
   * beside it, SHA-256 while writing, fsync, then link() (which, unlike rename, refuses to replace an
   * existing object), unlink the temp name, fsync the directory.
   */
  async save(ref: ObjectRef, body: Readable, expect: SaveExpect): Promise<SaveOutcome> {
    const file = this.file(ref);
    const dir = path.dirname(file);
    const temp = path.join(dir, `${TEMP_PREFIX}${path.basename(file)}-${randomBytes(6).toString("hex")}`);
    let handle: FileHandle | undefined;
    try {
      handle = await this.openTemp(dir, temp);
      const digest = await writeBody(handle.fd, body, expect.size, expect.sha256 !== undefined);
      if (expect.sha256 !== undefined && digest !== expect.sha256) {
        throw new HttpError(400, "content does not match its SHA-256 name");
      }
      await handle.sync();
      await handle.close();
      handle = undefined;
      try {
        await link(temp, file);
      } catch (error) {
        if (isErrno(error, "EEXIST") && expect.mayExist) return "already-present";
        if (isErrno(error, "EEXIST")) throw new HttpError(403, "object already exists");
        throw error;
      }
      await fsyncDirectory(dir);
      return "saved";
    } catch (error) {
      throw storageError(error) ?? error;
    } finally {
      if (handle) await handle.close().catch(() => {});
      await unlink(temp).catch(() => {});
    }
  }

  private async openTemp(dir: string, temp: string): Promise<FileHandle> {
    try {
      const handle = await open(temp, "wx", this.fileMode);
      if (this.fileMode & 0o060) await handle.chmod(this.fileMode);
      return handle;
    } catch (error) {
      if (!isErrno(error, "ENOENT")) throw error;
      // A data/XX directory may be missing in a repository made by another tool.
      await this.makeDir(dir);
      return open(temp, "wx", this.fileMode);
    }
  }

  /** Remove an object; returns its size, or undefined when it was already gone. */
  async remove(ref: ObjectRef): Promise<number | undefined> {
    const file = this.file(ref);
    const size = await this.sizeOf(file);
    try {
      await unlink(file);
    } catch (error) {
      if (isErrno(error, "ENOENT")) return undefined;
      throw error;
    }
    await fsyncDirectory(path.dirname(file)).catch(() => {});
    return size;
  }

  /**
   * open and fstat are made synchronously (metadata the kernel has cached: a thread-pool round trip
   * each cost more than the call, and restic's restores make thousands of small range requests);
   * the data is read asynchronously (it may have to come from the disk).
   */
  async open(ref: ObjectRef, rangeHeader: string | undefined): Promise<OpenedObject | undefined> {
    let fd: number;
    try {
      fd = openSync(this.file(ref), constants.O_RDONLY);
    } catch (error) {
      if (isMissing(error) || isErrno(error, "EISDIR")) return undefined;
      throw error;
    }
    let open = true;
    const close = async () => {
      if (open) closeSync(fd);
      open = false;
    };
    try {
      const info = fstatSync(fd);
      if (!info.isFile()) {
        await close();
        return undefined;
      }
      const range = parseRange(rangeHeader, info.size);
      const [start, length] =
        range.kind === "partial" ? [range.start, range.end - range.start + 1] : [0, info.size];
      return { size: info.size, range, send: (res) => sendFileRange(fd, res, start, length), close };
    } catch (error) {
      await close();
      throw error;
    }
  }

  async read(ref: ObjectRef): Promise<{ size: number; body: Readable } | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.file(ref), "r");
    } catch (error) {
      if (isMissing(error) || isErrno(error, "EISDIR")) return undefined;
      throw error;
    }
    const info = await handle.stat().catch(async (error: unknown) => {
      await handle.close();
      throw error;
    });
    if (!info.isFile()) {
      await handle.close();
      return undefined;
    }
    return { size: info.size, body: handle.createReadStream({ highWaterMark: 512 * 1024 }) };
  }

  /** Walk the tree once (start-up): every object's repository and size; crashed uploads' temp files removed. */
  async *scan(): AsyncIterable<StoredBytes[]> {
    const walk = async function* (dir: string, segments: string[]): AsyncGenerator<StoredBytes[]> {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      const found: StoredBytes[] = [];
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) yield* walk(full, [...segments, entry.name]);
        else if (entry.isFile() && isTempName(entry.name)) await unlink(full).catch(() => {});
        else if (entry.isFile()) {
          const repo = repoOfStoredPath([...segments, entry.name]);
          const info = repo === undefined ? undefined : await lstat(full).catch(() => undefined);
          if (repo !== undefined && info) found.push({ repo, size: info.size });
        }
      }
      if (found.length > 0) yield found;
    };
    yield* walk(this.root, []);
  }

  repositories(): Promise<string[][]> {
    return findRepositories(async (repo) => {
      const entries = await readdir(this.repoDir(repo), { withFileTypes: true }).catch((error: unknown) => {
        if (isMissing(error)) return [];
        throw error;
      });
      return {
        hasConfig: entries.some((entry) => entry.name === "config" && entry.isFile()),
        children: entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name),
      };
    });
  }

  async storedTimes(repo: readonly string[], type: BlobType): Promise<Map<string, number>> {
    const times = new Map<string, number>();
    const batches = await this.list(repo, type, false);
    const dir = this.objectPath(repo, type);
    for await (const batch of batches ?? [])
      for (const { name } of batch) {
        const file = type === "data" ? path.join(dir, name.slice(0, 2), name) : path.join(dir, name);
        const info = await stat(file).catch(() => undefined);
        if (info?.isFile()) times.set(name, info.mtimeMs);
      }
    return times;
  }
}

/** Sizes of blob files in one directory, stat'ed synchronously; vanished ones left out. */
function sized(dir: string, names: readonly string[]): ListEntry[] {
  const entries: ListEntry[] = [];
  for (const name of names) {
    // A blob deleted between readdir and stat is simply not listed; any other failure fails it.
    let info: ReturnType<typeof statSync>;
    try {
      info = statSync(`${dir}/${name}`, { throwIfNoEntry: false });
    } catch (error) {
      if (isMissing(error)) continue;
      throw error;
    }
    if (info?.isFile()) entries.push({ name, size: info.size });
  }
  return entries;
}

/**
 * Batches of at most STAT_BATCH entries, the event loop getting a turn between them. Small batches
 * also keep memory flat: only one batch and the text made of it are alive at a time.
 */
async function* listBatches(
  dir: string,
  type: BlobType,
  top: readonly string[],
  withSizes: boolean,
): AsyncGenerator<ListEntry[]> {
  const batches = async function* (at: string, names: readonly string[], sub = "") {
    // A blob in the wrong data/XX folder is not listed: it could not be read under its name.
    const blobs = names.filter((name) => isBlobId(name) && name.startsWith(sub));
    for (let first = 0; first < blobs.length; first += STAT_BATCH) {
      if (first > 0) await nextTurn();
      const part = blobs.slice(first, first + STAT_BATCH);
      yield withSizes ? sized(at, part) : part.map((name) => ({ name, size: 0 }));
    }
  };
  if (type !== "data") {
    yield* batches(dir, top);
    return;
  }
  // A data/XX directory removed meanwhile holds nothing; any other failure fails the listing
  // (an incomplete list would make restic think packs are gone).
  const namesIn = (at: string) =>
    readdir(at).catch((error: unknown) => {
      if (isMissing(error)) return [] as string[];
      throw error;
    });
  const subs = top.filter((name) => /^[0-9a-f]{2}$/.test(name)).sort();
  // The next directory is read on the thread pool while this one's entries are stat'ed here.
  let next = subs.length > 0 ? namesIn(path.join(dir, subs[0] as string)) : undefined;
  for (let i = 0; i < subs.length; i++) {
    const sub = subs[i] as string;
    const names = await (next as Promise<string[]>);
    next = i + 1 < subs.length ? namesIn(path.join(dir, subs[i + 1] as string)) : undefined;
    // Not left unhandled if this directory fails first; awaited (and so reported) on the next turn.
    next?.catch(() => {});
    yield* batches(path.join(dir, sub), names, sub);
  }
}
