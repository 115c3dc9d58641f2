import { type BigIntStats, type Dirent, lstatSync, readdirSync, readlinkSync } from "node:fs";
import { isErrno } from "../system/errors.js";
import { XattrReader, type Xattrs } from "../system/xattr.js";
import type { TarEntry } from "./header.js";
import { type ByteString, displayName, fsPath } from "./names.js";

/**
 * One thing to put into an archive: an entry, and where its content comes from. A regular file
 * with a `source` is read when it is archived (see archive-tree.ts), and its header then comes from
 * the open file itself; anything else is written as the entry says (`content` for a file in memory).
 */
export interface ArchiveItem {
  entry: TarEntry;
  /** Absolute path on disk, as bytes. */
  source?: ByteString;
  content?: Buffer;
  /** Identity of a non-regular file with several links (hard links are found by dev:inode). */
  links?: { key: string; count: number };
}

/** One file of a tree walk. */
export interface TreeItem extends ArchiveItem {
  source: ByteString;
  whiteout: boolean;
  /** Every extended attribute on disk, including those left out of the entry. */
  xattrs: Xattrs;
}

/**
 * What a live tree did while it was archived: files that vanished, shrank, grew or changed type.
 * Each is one warning naming the file; the archive stays valid and holds them as they were read.
 */
export class LiveChanges {
  count = 0;

  constructor(private readonly warn: (message: string) => void) {}

  note(path: ByteString, what: string): void {
    this.count++;
    this.warn(`${displayName(path)}: ${what}`);
  }
}

export interface TreeOptions {
  /** Archive name of the root directory's content ("" for none); entries are `<prefix>/<relative>`. */
  prefix: ByteString;
  /** Include the root directory itself as an entry named `prefix` (needs a prefix). */
  includeRoot: boolean;
  /** Extended attributes to leave out (e.g. overlayfs' own trusted.overlay.*). */
  skipXattr?: (name: ByteString) => boolean;
  /** Told about files that cannot be archived (sockets). */
  warn?: (message: string) => void;
  /** Paths (absolute, bytes) left out with everything below them, e.g. other volumes mounted inside. */
  skip?: ReadonlySet<ByteString>;
  /** Where files that vanish or change during the walk are reported. */
  changes: LiveChanges;
}

/** Files per request to the getfattr helper (each costs it a few process starts). */
const BATCH = 4096;
/**
 * Items made and handed on at a time. A batch waits for its attributes as names only; its items
 * are made just before they are archived, so they die young (measured on 100,000 files: items made
 * a whole batch ahead lived through two young-generation collections, and 40 MiB of them a run
 * went to the old generation).
 */
const ITEMS = 1024;

export function mtimeOf(ns: bigint): TarEntry["mtime"] {
  const seconds = ns / 1_000_000_000n;
  const rest = ns % 1_000_000_000n;
  // Before 1970 the remainder is negative: borrow a second.
  return rest < 0n
    ? { seconds: Number(seconds - 1n), nanoseconds: Number(rest + 1_000_000_000n) }
    : { seconds: Number(seconds), nanoseconds: Number(rest) };
}

function devParts(rdev: bigint): { devmajor: number; devminor: number } {
  return {
    devmajor: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    devminor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}

/** Owner, mode and time of a file as a tar entry has them. */
export function entryMetadata(info: BigIntStats): Pick<TarEntry, "mode" | "uid" | "gid" | "mtime"> {
  return {
    mode: Number(info.mode & 0o7777n),
    uid: Number(info.uid),
    gid: Number(info.gid),
    mtime: mtimeOf(info.mtimeNs),
  };
}

const EMPTY: Xattrs = new Map();
const NO_TIME: TarEntry["mtime"] = Object.freeze({ seconds: 0, nanoseconds: 0 });

/**
 * Walk a tree depth-first in byte order of names, never following symlinks, in batches: each batch
 * of items comes with every file's extended attributes (POSIX ACLs included), read by one
 * long-lived getfattr helper while the walk goes on. Memory stays bounded by a batch and the
 * largest directory, whatever the tree's size. A file that vanishes during the walk is reported to
 * `changes` and left out.
 */
export async function* walkTree(root: ByteString, options: TreeOptions): AsyncGenerator<TreeItem[]> {
  const walk = new Walk(root, options);
  const found = walk.found();
  const take = () => {
    const batch: Found[] = [];
    for (let next = found.next(); !next.done; next = found.next()) {
      batch.push(next.value);
      if (batch.length === BATCH) break;
    }
    return batch;
  };
  const reader = new XattrReader();
  const attrsOf = (batch: Found[]) => {
    const read = reader.read(batch.map((one) => walk.sourceOf(one)));
    read.catch(() => {});
    return read;
  };
  let failed = true;
  try {
    let batch = take();
    let attrs = attrsOf(batch);
    while (batch.length > 0) {
      // Walk the next batch while getfattr reads this one's attributes.
      const next = take();
      const nextAttrs = next.length > 0 ? attrsOf(next) : attrs;
      const xattrs = await attrs;
      for (let start = 0; start < batch.length; start += ITEMS) {
        const items: TreeItem[] = [];
        for (const one of batch.slice(start, start + ITEMS)) {
          const item = walk.itemOf(one);
          if (!item) continue;
          const all = xattrs.get(item.source);
          if (all) {
            item.xattrs = all;
            const kept = options.skipXattr
              ? new Map([...all].filter(([key]) => !options.skipXattr?.(key)))
              : all;
            if (kept.size > 0) item.entry.xattrs = kept;
          }
          items.push(item);
        }
        yield items;
      }
      batch = next;
      attrs = nextAttrs;
    }
    failed = false;
  } finally {
    // The helper's own failure is reported unless another error (or an early stop) is on its way.
    const closed = reader.close();
    if (failed) await closed.catch(() => {});
    else await closed;
  }
}

/**
 * What the walk found, as little as it can be until its item is made: a regular file's relative
 * path (its header comes from the open file when it is archived); a directory's item, made when it
 * was listed (so that its entry and its listing describe the same directory); anything else's
 * relative path, described (lstat) when its item is made.
 */
type Found = ByteString | TreeItem | { other: ByteString };

interface Level {
  dir: ByteString;
  relative: ByteString;
  children: Dirent[];
  index: number;
}

class Walk {
  constructor(
    private readonly root: ByteString,
    private readonly options: TreeOptions,
  ) {}

  sourceOf(found: Found): ByteString {
    if (typeof found === "string") return `${this.root}/${found}`;
    return "other" in found ? `${this.root}/${found.other}` : found.source;
  }

  /** The entries of the tree in archive order, directories listed as they are reached. */
  *found(): Generator<Found> {
    const stack: Level[] = [];
    const top = this.describe(this.root, "", stack);
    if (top) yield top;
    while (stack.length > 0) {
      const level = stack[stack.length - 1] as Level;
      const dirent = level.children[level.index++];
      if (dirent === undefined) {
        stack.pop();
        continue;
      }
      const name = dirent.name as unknown as ByteString;
      const relative = level.relative === "" ? name : `${level.relative}/${name}`;
      const source = `${level.dir}/${name}`;
      if (this.options.skip?.has(source)) continue;
      if (dirent.isFile()) yield relative;
      else if (dirent.isDirectory() || typeUnknown(dirent)) {
        // (A filesystem that does not tell types in its listings: lstat now, and descend.)
        const item = this.describe(source, relative, stack);
        if (item) yield item;
      } else yield { other: relative };
    }
  }

  /** The item of what was found (undefined: gone meanwhile, or a socket). */
  itemOf(found: Found): TreeItem | undefined {
    if (typeof found !== "string")
      return "other" in found ? this.describe(`${this.root}/${found.other}`, found.other) : found;
    const entry: TarEntry = {
      name: this.nameOf(found),
      type: "file",
      mode: 0,
      uid: 0,
      gid: 0,
      size: 0,
      mtime: NO_TIME,
    };
    return { entry, source: `${this.root}/${found}`, whiteout: false, xattrs: EMPTY };
  }

  private nameOf(relative: ByteString): ByteString {
    const prefix = this.options.prefix;
    return prefix === "" ? relative : relative === "" ? prefix : `${prefix}/${relative}`;
  }

  /**
   * The item of a path, from lstat. A directory is listed onto `stack` at the same moment (when
   * there is a stack to walk on: one found as something else and now a directory is archived empty).
   */
  private describe(source: ByteString, relative: ByteString, stack?: Level[]): TreeItem | undefined {
    const { options } = this;
    let info: BigIntStats;
    try {
      info = lstatSync(fsPath(source), { bigint: true });
    } catch (error) {
      if (!isErrno(error, "ENOENT") || relative === "") throw error;
      options.changes.note(source, "vanished before it could be read; not archived");
      return undefined;
    }
    const name = this.nameOf(relative);
    const base = { source, whiteout: false, xattrs: EMPTY };
    const meta = { name, size: 0, ...entryMetadata(info) };
    const links = info.nlink > 1n ? { key: `${info.dev}:${info.ino}`, count: Number(info.nlink) } : undefined;
    if (info.isDirectory()) {
      if (stack) {
        const children = listDirectory(source, options.changes);
        if (children) stack.push({ dir: source, relative, children, index: 0 });
      } else options.changes.note(source, "became a directory while being archived; archived empty");
      return relative !== "" || options.includeRoot
        ? { ...base, entry: { ...meta, type: "dir" } }
        : undefined;
    }
    if (info.isFile()) return { ...base, entry: { ...meta, type: "file" } };
    if (info.isSymbolicLink()) {
      let linkname: ByteString;
      try {
        linkname = readlinkSync(fsPath(source), { encoding: "latin1" });
      } catch (error) {
        if (!isErrno(error, "ENOENT")) throw error;
        options.changes.note(source, "vanished before it could be read; not archived");
        return undefined;
      }
      return { ...base, ...(links ? { links } : {}), entry: { ...meta, type: "symlink", linkname } };
    }
    if (info.isCharacterDevice() || info.isBlockDevice()) {
      const type = info.isCharacterDevice() ? "char" : "block";
      // Overlayfs links all whiteouts of a layer to one inode: they are never hard links of each other.
      const whiteout = type === "char" && info.rdev === 0n;
      return {
        ...base,
        whiteout,
        ...(links && !whiteout ? { links } : {}),
        entry: { ...meta, type, ...devParts(info.rdev) },
      };
    }
    if (info.isFIFO()) return { ...base, ...(links ? { links } : {}), entry: { ...meta, type: "fifo" } };
    options.warn?.(`${displayName(source)}: socket skipped (a socket cannot be archived)`);
    return undefined;
  }
}

function typeUnknown(dirent: Dirent): boolean {
  return !(
    dirent.isFile() ||
    dirent.isDirectory() ||
    dirent.isSymbolicLink() ||
    dirent.isFIFO() ||
    dirent.isSocket() ||
    dirent.isCharacterDevice() ||
    dirent.isBlockDevice()
  );
}

/** A directory's entries in byte order, or undefined when it vanished meanwhile. */
function listDirectory(dir: ByteString, changes: LiveChanges): Dirent[] | undefined {
  let children: Dirent[];
  try {
    // latin1: one char per byte, so the default string sort is the byte order.
    children = readdirSync(fsPath(dir), { withFileTypes: true, encoding: "latin1" }) as unknown as Dirent[];
  } catch (error) {
    if (!isErrno(error, "ENOENT") && !isErrno(error, "ENOTDIR")) throw error;
    changes.note(dir, "vanished while its directory was read; archived empty");
    return undefined;
  }
  return children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
