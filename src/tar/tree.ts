import { lstatSync, readdirSync, readlinkSync } from "node:fs";
import path from "node:path";
import { readXattrsTree, type Xattrs } from "../system/xattr.js";
import type { TarEntry } from "./header.js";

/** One file of a tree walk: its tar entry, the file to read content from, and what it is on disk. */
export interface TreeItem {
  entry: TarEntry;
  /** Absolute path on disk (content of regular files is read from here). */
  source: string;
  /** Path relative to the walked root ("" for the root itself). */
  relative: string;
  whiteout: boolean;
  /** Every extended attribute on disk, including those left out of the entry. */
  xattrs: Xattrs;
}

export interface TreeOptions {
  /** Archive name of the root directory's content ("" for none); entries are `<prefix>/<relative>`. */
  prefix: string;
  /** Include the root directory itself as an entry named `prefix` (needs a prefix). */
  includeRoot: boolean;
  /** Extended attributes to leave out (e.g. overlayfs' own trusted.overlay.*). */
  skipXattr?: (name: string) => boolean;
  /** Told about files that cannot be archived (sockets). */
  warn?: (message: string) => void;
  /** Paths (absolute) left out with everything below them, e.g. other volumes mounted inside. */
  skip?: ReadonlySet<string>;
}

function mtimeOf(ns: bigint): TarEntry["mtime"] {
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

/**
 * Walk a tree depth-first in byte order of names, never following symlinks, and describe every
 * file as a tar entry with full metadata: numeric owner, mode incl. setuid/setgid/sticky,
 * nanosecond mtime, xattrs (POSIX ACLs included), hard links (the second name links to the first).
 */
export async function walkTree(root: string, options: TreeOptions): Promise<Iterable<TreeItem>> {
  // One getfattr for the whole tree, then a synchronous walk: thousands of small files cost far
  // less through sync calls than through the thread pool.
  return walkWith(root, options, await readXattrsTree(root));
}

function* walkWith(root: string, options: TreeOptions, xattrs: Map<string, Xattrs>): Generator<TreeItem> {
  const seen = new Map<string, string>();
  const join = (relative: string) => [options.prefix, relative].filter((part) => part !== "").join("/");

  function* visit(relative: string): Generator<TreeItem> {
    const source = relative === "" ? root : path.join(root, relative);
    if (relative !== "" && options.skip?.has(source)) return;
    const info = lstatSync(source, { bigint: true });
    const name = join(relative);
    const all: Xattrs = xattrs.get(source) ?? new Map<string, Buffer>();
    const attrs: Xattrs = new Map([...all].filter(([key]) => !options.skipXattr?.(key)));
    const base = {
      name,
      mode: Number(info.mode & 0o7777n),
      uid: Number(info.uid),
      gid: Number(info.gid),
      size: 0,
      mtime: mtimeOf(info.mtimeNs),
      ...(attrs.size > 0 ? { xattrs: attrs } : {}),
    };
    if (info.isDirectory()) {
      if (relative !== "" || options.includeRoot) {
        yield { entry: { ...base, type: "dir" }, source, relative, whiteout: false, xattrs: all };
      }
      const names = byteOrder(readdirSync(source));
      for (const child of names) yield* visit(relative === "" ? child : `${relative}/${child}`);
      return;
    }
    // Overlayfs links all whiteouts of a layer to one inode: they are never hard links of each other.
    const isWhiteout = info.isCharacterDevice() && info.rdev === 0n;
    if (info.nlink > 1n && !isWhiteout) {
      const key = `${info.dev}:${info.ino}`;
      const first = seen.get(key);
      if (first !== undefined) {
        yield {
          entry: { ...base, type: "hardlink", linkname: first },
          source,
          relative,
          whiteout: false,
          xattrs: all,
        };
        return;
      }
      seen.set(key, name);
    }
    if (info.isFile()) {
      yield {
        entry: { ...base, type: "file", size: Number(info.size) },
        source,
        relative,
        whiteout: false,
        xattrs: all,
      };
    } else if (info.isSymbolicLink()) {
      const linkname = readlinkSync(source);
      yield { entry: { ...base, type: "symlink", linkname }, source, relative, whiteout: false, xattrs: all };
    } else if (info.isCharacterDevice() || info.isBlockDevice()) {
      const type = info.isCharacterDevice() ? "char" : "block";
      const whiteout = type === "char" && info.rdev === 0n;
      yield { entry: { ...base, type, ...devParts(info.rdev) }, source, relative, whiteout, xattrs: all };
    } else if (info.isFIFO()) {
      yield { entry: { ...base, type: "fifo" }, source, relative, whiteout: false, xattrs: all };
    } else {
      options.warn?.(`${source}: socket skipped (a socket cannot be archived)`);
    }
  }

  yield* visit("");
}

/** Names in the byte order of their UTF-8 encoding (each name encoded once, not per comparison). */
function byteOrder(names: string[]): string[] {
  return names
    .map((name) => ({ name, bytes: Buffer.from(name) }))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
    .map((entry) => entry.name);
}
