import type { ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import type { RangeResult } from "./range.js";
import { type BlobType, isTypeName, MAX_REPO_DEPTH, type ObjectType } from "./repo-path.js";

/** One object of a repository: its config, or a blob of a type by its name. */
export interface ObjectRef {
  repo: readonly string[];
  type: ObjectType;
  /** The blob's name (its SHA-256); absent for config. */
  name?: string;
}

export interface ListEntry {
  name: string;
  size: number;
}

export type SaveOutcome = "saved" | "already-present";

export interface SaveExpect {
  /** The body's exact length (Content-Length). */
  size: number;
  /** When set, the body's SHA-256 must be this (the blob's name), or nothing is stored (400). */
  sha256?: string;
  /** An object already under the name is fine (an identical re-upload, told apart by sha256). */
  mayExist: boolean;
}

/** An object opened for reading: its size, the range the request gets, and how to send it. */
export interface OpenedObject {
  size: number;
  range: RangeResult;
  /** Send the range's bytes (the headers are already written). */
  send(res: ServerResponse): Promise<void>;
  close(): Promise<void>;
}

/** Bytes of one stored object, as a usage scan finds them. */
export interface StoredBytes {
  /** The repository's path (`alice/laptop`, "" for the root repository). */
  repo: string;
  size: number;
}

/**
 * Where repositories are kept: a directory tree (restic's local layout) or an S3 bucket (restic's
 * s3 layout). The handler speaks only this; every method maps a missing object to undefined (or
 * 404) and any other failure to an error (never an incomplete answer).
 */
export interface Storage {
  /** For logs: the directory or s3://bucket/prefix. */
  readonly location: string;
  /** Checks the storage can be used (the directory made, the bucket reachable) before serving. */
  prepare(): Promise<void>;
  createRepo(repo: readonly string[]): Promise<void>;
  repoExists(repo: readonly string[]): Promise<boolean>;
  /** Size of a stored object, or undefined when absent. */
  size(ref: ObjectRef): Promise<number | undefined>;
  /**
   * The blobs of a type in batches as they are found (names only when `withSizes` is false: sizes
   * may then be 0), or undefined when the repository or the type does not exist.
   */
  list(
    repo: readonly string[],
    type: BlobType,
    withSizes: boolean,
  ): Promise<AsyncIterable<ListEntry[]> | undefined>;
  /** Open for reading with the request's Range header (`head`: no body will be sent), or undefined when absent. */
  open(ref: ObjectRef, rangeHeader: string | undefined, head: boolean): Promise<OpenedObject | undefined>;
  /**
   * Where the client may read the object itself (a redirect), or undefined when this server sends
   * it. Only a storage with its own HTTP front (S3, when asked to) has one.
   */
  /** The whole object as a stream (copies to a mirror), or undefined when absent. */
  read(ref: ObjectRef): Promise<{ size: number; body: Readable } | undefined>;
  readUrl?(ref: ObjectRef, rangeHeader: string | undefined): Promise<string | undefined>;
  /** Store an upload under its final name, never visible before it is complete and verified. */
  save(ref: ObjectRef, body: Readable, expect: SaveExpect): Promise<SaveOutcome>;
  /** Remove an object; its size, or undefined when it was already gone. */
  remove(ref: ObjectRef): Promise<number | undefined>;
  /** Every stored object's repository and size (for quotas and metrics), leftovers cleaned up. */
  scan(): AsyncIterable<StoredBytes[]>;
  /** Every repository (a folder with a config, at most MAX_REPO_DEPTH deep), in sorted order. */
  repositories(): Promise<string[][]>;
  /**
   * When each blob of a type was stored (ms since the epoch, the storage's own clock: a file's
   * mtime, an object's LastModified), by name; empty when there are none.
   */
  storedTimes(repo: readonly string[], type: BlobType): Promise<Map<string, number>>;
}

/** What one level of the storage holds: whether it has a config, and the folders below it. */
export type LevelProbe = (repo: readonly string[]) => Promise<{ hasConfig: boolean; children: string[] }>;

/**
 * The repositories under the root, one level at a time as `probe` reports them: a level with a
 * config is a repository; folders named like a type, hidden ones and deeper ones are not walked.
 */
export async function findRepositories(probe: LevelProbe): Promise<string[][]> {
  const found: string[][] = [];
  const walk = async (repo: string[]) => {
    const { hasConfig, children } = await probe(repo);
    if (hasConfig) found.push(repo);
    if (repo.length >= MAX_REPO_DEPTH) return;
    for (const child of [...children].sort())
      if (!isTypeName(child) && !child.startsWith(".")) await walk([...repo, child]);
  };
  await walk([]);
  return found;
}
