import { randomBytes } from "node:crypto";
import { chmod, type FileHandle, link, mkdir, open, readdir, stat, unlink } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { fsyncDirectory } from "../system/atomic-write.js";
import { isErrno } from "../system/errors.js";
import { writeBody } from "./body-writer.js";
import { HttpError, storageError } from "./http-error.js";
import { BLOB_TYPES, type BlobType, isBlobId, type ObjectType } from "./repo-path.js";

const STAT_CONCURRENCY = 64;
const TEMP_PREFIX = ".tmp-";

export interface ListEntry {
  name: string;
  size: number;
}

export interface StoreOptions {
  /** 0770/0660 instead of 0700/0600, for a group that shares the repositories. */
  groupAccessible: boolean;
}

export type SaveOutcome = "saved" | "already-present";

/** The path (or a directory on the way to it) does not exist. */
function isMissing(error: unknown): boolean {
  return isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR");
}

export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

/** Repositories on disk, in the layout of restic's local backend and rest-server. */
export class BlobStore {
  readonly dirMode: number;
  readonly fileMode: number;

  constructor(
    readonly root: string,
    options: StoreOptions,
  ) {
    this.dirMode = options.groupAccessible ? 0o770 : 0o700;
    this.fileMode = options.groupAccessible ? 0o660 : 0o600;
  }

  repoDir(repo: readonly string[]): string {
    return path.join(this.root, ...repo);
  }

  objectPath(repo: readonly string[], type: ObjectType, name?: string): string {
    const dir = this.repoDir(repo);
    if (type === "config") return path.join(dir, "config");
    if (name === undefined) return path.join(dir, type);
    if (type === "data") return path.join(dir, "data", name.slice(0, 2), name);
    return path.join(dir, type, name);
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
  async size(file: string): Promise<number | undefined> {
    try {
      const info = await stat(file);
      return info.isFile() ? info.size : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  /** Blob names and sizes of a type, or undefined when the type's directory does not exist. */
  async list(repo: readonly string[], type: BlobType, withSizes: boolean): Promise<ListEntry[] | undefined> {
    const dir = this.objectPath(repo, type);
    let files: string[];
    try {
      files = type === "data" ? await this.listDataFiles(dir) : await readdir(dir);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    const names = files.filter((file) => isBlobId(path.basename(file)));
    if (!withSizes) return names.map((file) => ({ name: path.basename(file), size: 0 }));
    return statAll(dir, names);
  }

  private async listDataFiles(dir: string): Promise<string[]> {
    const subdirs = (await readdir(dir)).filter((name) => /^[0-9a-f]{2}$/.test(name));
    const nested = await Promise.all(
      subdirs.map(async (sub) => {
        // A data/XX directory removed meanwhile holds nothing; any other failure fails the listing
        // (an incomplete list would make restic think packs are gone).
        const names = await readdir(path.join(dir, sub)).catch((error: unknown) => {
          if (isMissing(error)) return [];
          throw error;
        });
        return names.map((n) => `${sub}/${n}`);
      }),
    );
    return nested.flat();
  }

  /**
   * Store an upload under its final name without ever exposing a partial file: a hidden temp file
   * beside it, SHA-256 while writing, fsync, then link() (which, unlike rename, refuses to replace an
   * existing object), unlink the temp name, fsync the directory.
   */
  async save(
    file: string,
    body: Readable,
    expect: { size: number; sha256?: string; mayExist: boolean },
  ): Promise<SaveOutcome> {
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
  async remove(file: string): Promise<number | undefined> {
    const size = await this.size(file);
    try {
      await unlink(file);
    } catch (error) {
      if (isErrno(error, "ENOENT")) return undefined;
      throw error;
    }
    await fsyncDirectory(path.dirname(file)).catch(() => {});
    return size;
  }
}

async function statAll(dir: string, files: readonly string[]): Promise<ListEntry[]> {
  const entries: ListEntry[] = new Array(files.length);
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < files.length; index = next++) {
      const file = files[index] as string;
      // A blob deleted between readdir and stat is simply not listed; any other failure fails it.
      const info = await stat(path.join(dir, file)).catch((error: unknown) => {
        if (isMissing(error)) return undefined;
        throw error;
      });
      entries[index] = { name: path.basename(file), size: info?.size ?? -1 };
    }
  };
  await Promise.all(Array.from({ length: Math.min(STAT_CONCURRENCY, files.length) }, worker));
  return entries.filter((entry) => entry.size >= 0);
}
