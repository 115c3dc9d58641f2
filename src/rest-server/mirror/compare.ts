import { createHash } from "node:crypto";
import { type BlobType, type ObjectType, repoKey } from "../repo-path.js";
import type { ObjectRef, Storage } from "../storage.js";
import { copyObject } from "./copy.js";

/** Objects read or copied at a time. */
const PARALLEL = 4;
/** The order a repository is copied in, so a mirror being filled is a valid repository throughout. */
const COPY_ORDER: readonly BlobType[] = ["keys", "data", "index", "snapshots"];

export interface Difference {
  repo: string;
  type: ObjectType;
  name?: string;
  problem: "missing on mirror" | "size differs" | "content differs" | "does not match its name";
  primaryBytes?: number;
  mirrorBytes?: number;
}

export interface Comparison {
  repos: number;
  /** Objects of the primary looked at (locks are not mirrored). */
  objects: number;
  bytes: number;
  /** Objects the mirror has and the primary no longer has (deletes are not propagated): not a difference. */
  onlyOnMirror: number;
  /** Objects whose content was hashed (--read-data). */
  read: number;
  differences: Difference[];
}

/** Run `work` over `items`, PARALLEL at a time. */
async function inParallel<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let at = next++; at < items.length; at = next++) await work(items[at] as T);
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
}

async function sizes(
  storage: Storage,
  repo: readonly string[],
  type: BlobType,
): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  for await (const batch of (await storage.list(repo, type, true)) ?? [])
    for (const { name, size } of batch) found.set(name, size);
  return found;
}

/** One type of one repository on both sides: what the mirror lacks, holds in another size, or alone. */
async function sideBySide(primary: Storage, mirror: Storage, repo: readonly string[], type: BlobType) {
  const ours = await sizes(primary, repo, type);
  const theirs = await sizes(mirror, repo, type);
  const missing: Array<[name: string, size: number]> = [];
  const differing: Difference[] = [];
  let bytes = 0;
  for (const [name, size] of ours) {
    bytes += size;
    const copied = theirs.get(name);
    if (copied === undefined) missing.push([name, size]);
    else if (copied !== size)
      differing.push({
        repo: repoKey(repo),
        type,
        name,
        problem: "size differs",
        primaryBytes: size,
        mirrorBytes: copied,
      });
  }
  let onlyOnMirror = 0;
  for (const name of theirs.keys()) if (!ours.has(name)) onlyOnMirror++;
  return { objects: ours.size, bytes, missing, differing, onlyOnMirror, onMirror: [...theirs.keys()] };
}

async function contentOf(storage: Storage, ref: ObjectRef): Promise<Buffer | undefined> {
  const opened = await storage.read(ref);
  if (!opened) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of opened.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function sha256Of(storage: Storage, ref: ObjectRef): Promise<string | undefined> {
  const opened = await storage.read(ref);
  if (!opened) return undefined;
  const hash = createHash("sha256");
  for await (const chunk of opened.body) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** The repositories asked for: one (`--repo`), or every one of the primary. */
async function reposOf(primary: Storage, only: readonly string[] | undefined): Promise<string[][]> {
  if (only) return [[...only]];
  return primary.repositories();
}

/**
 * Compare the mirror with the primary: every object of the primary's repositories (config, keys,
 * data, index, snapshots) must be on the mirror with the same size (the config with the same
 * bytes); with `readData`, every blob on the mirror must hash to the SHA-256 its name promises.
 */
export async function compareMirror(
  primary: Storage,
  mirror: Storage,
  options: { repo?: readonly string[]; readData: boolean },
): Promise<Comparison> {
  const result: Comparison = { repos: 0, objects: 0, bytes: 0, onlyOnMirror: 0, read: 0, differences: [] };
  for (const repo of await reposOf(primary, options.repo)) {
    result.repos++;
    const key = repoKey(repo);
    const config = await contentOf(primary, { repo, type: "config" });
    if (config) {
      result.objects++;
      result.bytes += config.length;
      const copy = await contentOf(mirror, { repo, type: "config" });
      if (!copy) result.differences.push({ repo: key, type: "config", problem: "missing on mirror" });
      else if (!copy.equals(config))
        result.differences.push({ repo: key, type: "config", problem: "content differs" });
    }
    for (const type of COPY_ORDER) {
      const side = await sideBySide(primary, mirror, repo, type);
      result.objects += side.objects;
      result.bytes += side.bytes;
      result.onlyOnMirror += side.onlyOnMirror;
      for (const [name, size] of side.missing)
        result.differences.push({ repo: key, type, name, problem: "missing on mirror", primaryBytes: size });
      result.differences.push(...side.differing);
      if (!options.readData) continue;
      await inParallel(side.onMirror, async (name) => {
        const digest = await sha256Of(mirror, { repo, type, name });
        result.read++;
        if (digest !== undefined && digest !== name)
          result.differences.push({ repo: key, type, name, problem: "does not match its name" });
      });
    }
  }
  return result;
}

export interface Resync {
  repos: number;
  copied: number;
  bytes: number;
  /** What could not be put right by copying (a different object under the name on the mirror). */
  left: Difference[];
}

/**
 * Copy to the mirror whatever of the primary it lacks (a mirror added to a server that already
 * holds repositories), repository by repository in the order that keeps it valid: config, keys,
 * data, index, snapshots. An object the mirror holds in another size is named, not replaced.
 */
export async function resyncMirror(
  primary: Storage,
  mirror: Storage,
  options: { repo?: readonly string[] },
): Promise<Resync> {
  const result: Resync = { repos: 0, copied: 0, bytes: 0, left: [] };
  for (const repo of await reposOf(primary, options.repo)) {
    result.repos++;
    const configSize = await primary.size({ repo, type: "config" });
    if (configSize !== undefined && (await mirror.size({ repo, type: "config" })) === undefined) {
      if (await copyObject(primary, mirror, { repo, type: "config" })) {
        result.copied++;
        result.bytes += configSize;
      }
    }
    for (const type of COPY_ORDER) {
      const { missing, differing } = await sideBySide(primary, mirror, repo, type);
      result.left.push(...differing);
      await inParallel(missing, async ([name, size]) => {
        const ref = { repo, type, name };
        if (!(await copyObject(primary, mirror, ref))) return;
        result.copied++;
        result.bytes += size;
      });
    }
  }
  return result;
}
