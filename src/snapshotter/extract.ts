import { randomBytes } from "node:crypto";
import {
  type BigIntStats,
  chmodSync,
  chownSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from "node:fs";
import { run } from "../system/exec.js";
import type { TimeSlice } from "../system/signals.js";
import { writeXattrs } from "../system/xattr.js";
import { type ByteString, displayName, fsPath } from "../tar/names.js";
import type { Member } from "../tar/reader.js";
import { cleanName } from "./archive-map.js";
import { ArchiveContentError } from "./errors.js";

const CHUNK = 1024 * 1024;
/** Files whose extended attributes go to one `setfattr --restore`. */
const XATTR_BATCH = 1024;

/** A member's path inside its volume, checked: relative, no "." or ".." segments, no NUL. */
export function memberPath(member: Member, root: ByteString): ByteString {
  const name = cleanName(member.name);
  if (name === root) return "";
  if (!name.startsWith(`${root}/`))
    throw new ArchiveContentError(`${displayName(member.name)} is not inside ${displayName(root)}`);
  const relative = name.slice(root.length + 1);
  const parts = relative.split("/");
  if (relative.includes("\0") || parts.some((part) => part === "" || part === "." || part === "..")) {
    throw new ArchiveContentError(
      `archive entry ${JSON.stringify(displayName(member.name))} would escape its volume`,
    );
  }
  return relative;
}

/**
 * Checks every member of a volume, told one at a time, before anything on disk changes: names stay
 * inside the volume, hard links point at an earlier non-directory member of the same volume, only
 * types we can restore. Remembers the paths that are not directories (nothing may be stored below
 * one), not the members: memory is a name per file, not a header.
 */
export class VolumeCheck {
  /** Path -> type of every path that is, so far, not a directory. */
  private readonly others = new Map<string, Member["type"]>();
  entries = 0;
  /** Bytes of file data. */
  bytes = 0;

  constructor(private readonly root: ByteString) {}

  add(member: Member): void {
    const root = this.root;
    const relative = memberPath(member, root);
    const parts = relative.split("/");
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join("/");
      const kind = this.others.get(ancestor);
      if (kind !== undefined) {
        throw new ArchiveContentError(
          `${displayName(member.name)} is stored below ${displayName(ancestor)}, which the archive makes a ${kind}`,
        );
      }
    }
    if (member.type === "other")
      throw new ArchiveContentError(
        `${displayName(member.name)}: unsupported entry type '${member.typeflag}'`,
      );
    if (member.type === "hardlink") {
      const target = cleanName(member.linkname);
      if (target !== root && !target.startsWith(`${root}/`)) {
        throw new ArchiveContentError(
          `${displayName(member.name)} is a hard link to ${displayName(member.linkname)}, outside its volume`,
        );
      }
      const targetRelative = memberPath({ ...member, name: target }, root);
      if (!this.others.has(targetRelative)) {
        throw new ArchiveContentError(
          `${displayName(member.name)} is a hard link to ${displayName(member.linkname)}, which comes nowhere before it`,
        );
      }
    }
    if (relative !== "") {
      if (member.type === "dir") this.others.delete(relative);
      else this.others.set(relative, member.type);
    }
    this.entries++;
    if (member.type === "file") this.bytes += member.size;
  }
}

/** Copy one member's data from the archive into an open file, in chunks. */
async function copyData(
  archiveFd: number,
  member: Member,
  fd: number,
  buffer: Buffer,
  options: ExtractOptions,
): Promise<void> {
  let done = 0;
  while (done < member.size) {
    const want = Math.min(buffer.length, member.size - done);
    const got = readSync(archiveFd, buffer, 0, want, member.dataOffset + done);
    if (got !== want)
      throw new ArchiveContentError(`${displayName(member.name)}: archive ended inside the data`);
    let written = 0;
    while (written < got) written += writeSync(fd, buffer, written, got - written);
    done += got;
    options.onBytes(got);
    if (options.slice?.due()) await options.slice.pause();
  }
}

const seconds = (member: Member) => member.mtime.seconds + member.mtime.nanoseconds / 1e9;

function lstatOf(file: ByteString): BigIntStats | undefined {
  return lstatSync(fsPath(file), { bigint: true, throwIfNoEntry: false });
}

const parentOf = (file: ByteString) => file.slice(0, file.lastIndexOf("/")) || "/";

/**
 * Remove a tree like `rm -r --one-file-system`: nothing on another filesystem (st_dev) and no
 * mount point is entered or removed; those are warned about and left, with the way to them.
 */
export function removeTree(
  file: ByteString,
  fence: { dev: bigint; mountPoints: ReadonlySet<ByteString>; warn: (message: string) => void },
): boolean {
  const info = lstatOf(file);
  if (!info) return true;
  if (info.dev !== fence.dev || fence.mountPoints.has(file)) {
    fence.warn(
      `${displayName(file)} is on another filesystem or a mount point (another volume?); left as it is`,
    );
    return false;
  }
  if (!info.isDirectory()) {
    unlinkSync(fsPath(file));
    return true;
  }
  let empty = true;
  for (const name of readdirSync(fsPath(file), { encoding: "latin1" }))
    if (!removeTree(`${file}/${name}`, fence)) empty = false;
  if (empty) rmdirSync(fsPath(file));
  return empty;
}

/** Empty a directory volume without leaving its filesystem or entering what is mounted below it. */
export function emptyDirectory(
  dir: ByteString,
  mountPoints: ReadonlySet<ByteString>,
  warn: (message: string) => void,
): void {
  const dev = (lstatOf(dir) as BigIntStats).dev;
  for (const name of readdirSync(fsPath(dir), { encoding: "latin1" }))
    removeTree(`${dir}/${name}`, { dev, mountPoints, warn });
}

/** Remove whatever is at `full` (a file, or a directory that the archive replaces by a file). */
function removeExisting(full: ByteString, dev: bigint, warn: (message: string) => void): void {
  if (!removeTree(full, { dev, mountPoints: new Set(), warn }))
    throw new ArchiveContentError(`${displayName(full)} cannot be replaced: it holds another filesystem`);
}

export interface ExtractOptions {
  archiveFd: number;
  onBytes: (n: number) => void;
  warn: (message: string) => void;
  slice?: TimeSlice;
}

/** Node cannot make device nodes or FIFOs: mknod(1)/mkfifo(1) make one under an ASCII temp name
 * (an argument list is always UTF-8), which is then renamed to the member's bytes. */
async function makeNode(full: ByteString, member: Member): Promise<void> {
  const temp = `${parentOf(full)}/.stowage-node-${randomBytes(6).toString("hex")}`;
  const tempText = Buffer.from(temp, "latin1").toString("utf8");
  if (member.type === "fifo") await run("mkfifo", ["--", tempText]);
  else
    await run("mknod", [
      "--",
      tempText,
      member.type === "char" ? "c" : "b",
      String(member.devmajor),
      String(member.devminor),
    ]);
  renameSync(fsPath(temp), fsPath(full));
}

/** Extended attributes set in batches as files are restored (one setfattr per batch). */
class XattrBatch {
  private pending = new Map<ByteString, Map<string, Buffer>>();

  async add(full: ByteString, xattrs: Map<string, Buffer>): Promise<void> {
    this.pending.set(full, xattrs);
    if (this.pending.size >= XATTR_BATCH) await this.flush();
  }

  async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    await writeXattrs(batch);
  }
}

/**
 * Restore a directory volume's members into `dest` (already emptied). Parent directories are
 * only ever real directories we checked: a symlink from the archive or on disk is never written
 * through. Directory metadata is applied last, deepest first, so their mtimes stay as archived.
 * Names are bytes: what the archive holds is exactly what is created. Members are told one at a
 * time, in archive order, as they are read (`add`); `finish` applies what waits for the end.
 */
export function directoryExtractor(
  root: ByteString,
  dest: ByteString,
  options: ExtractOptions,
): { add: (member: Member) => Promise<void>; finish: () => Promise<number> } {
  const buffer = Buffer.allocUnsafe(CHUNK);
  const dirs = new Set<string>([""]);
  const dirMeta: Array<{ full: ByteString; member: Member }> = [];
  const xattrs = new XattrBatch();
  const dev = (lstatOf(dest) as BigIntStats).dev;
  const replace = (full: ByteString) => removeExisting(full, dev, options.warn);

  const ensureParent = (relative: ByteString) => {
    const parts = relative.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join("/");
      if (dirs.has(sub)) continue;
      const full = `${dest}/${sub}`;
      const info = lstatOf(full);
      if (info?.isSymbolicLink() || (info && !info.isDirectory())) {
        throw new ArchiveContentError(
          `${displayName(sub)} in the archive is not a directory, yet entries are stored under it`,
        );
      }
      if (!info) mkdirSync(fsPath(full), { mode: 0o755 });
      dirs.add(sub);
    }
  };

  // A path that was a directory and is replaced by something else takes its subdirectories along.
  const forget = (relative: ByteString) => {
    if (!dirs.delete(relative)) return;
    for (const known of dirs) if (known.startsWith(`${relative}/`)) dirs.delete(known);
  };

  let entries = 0;
  const add = async (member: Member) => {
    entries++;
    if (options.slice?.due()) await options.slice.pause();
    const relative = memberPath(member, root);
    const full = relative === "" ? dest : `${dest}/${relative}`;
    const path = fsPath(full);
    if (relative !== "") ensureParent(relative);
    switch (member.type) {
      case "dir": {
        if (relative !== "") {
          const info = lstatOf(full);
          if (info && !info.isDirectory()) replace(full);
          if (!info?.isDirectory()) mkdirSync(path, { mode: 0o700 });
          dirs.add(relative);
        }
        dirMeta.push({ full, member });
        break;
      }
      case "file": {
        replace(full);
        forget(relative);
        const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
        const fd = openSync(path, flags, 0o600);
        try {
          await copyData(options.archiveFd, member, fd, buffer, options);
          fchownSync(fd, member.uid, member.gid);
          fchmodSync(fd, member.mode);
          futimesSync(fd, seconds(member), seconds(member));
        } finally {
          closeSync(fd);
        }
        break;
      }
      case "symlink": {
        replace(full);
        forget(relative);
        symlinkSync(fsPath(member.linkname), path);
        lchownSync(path, member.uid, member.gid);
        lutimesSync(path, seconds(member), seconds(member));
        break;
      }
      case "hardlink": {
        const targetRelative = memberPath({ ...member, name: cleanName(member.linkname) }, root);
        ensureParent(targetRelative);
        const target = `${dest}/${targetRelative}`;
        const info = lstatOf(target);
        if (!info || info.isDirectory())
          throw new ArchiveContentError(
            `${displayName(member.name)}: hard link target ${displayName(member.linkname)} missing`,
          );
        replace(full);
        forget(relative);
        linkSync(fsPath(target), path);
        break;
      }
      case "char":
      case "block":
      case "fifo": {
        replace(full);
        forget(relative);
        await makeNode(full, member);
        chownSync(path, member.uid, member.gid);
        chmodSync(path, member.mode);
        utimesSync(path, seconds(member), seconds(member));
        break;
      }
      default:
        throw new ArchiveContentError(
          `${displayName(member.name)}: unsupported entry type '${member.typeflag}'`,
        );
    }
    if (member.xattrs.size > 0 && member.type !== "symlink") await xattrs.add(full, member.xattrs);
  };
  const finish = async () => {
    await xattrs.flush();
    for (const { full, member } of dirMeta.reverse()) {
      const path = fsPath(full);
      chownSync(path, member.uid, member.gid);
      chmodSync(path, member.mode);
      utimesSync(path, seconds(member), seconds(member));
    }
    return entries;
  };
  return { add, finish };
}

/**
 * Restore a file volume in place: the same inode is rewritten, because a running container's
 * single-file bind mount holds that inode (a rename would leave it seeing the old file).
 */
export async function extractFile(member: Member, dest: ByteString, options: ExtractOptions): Promise<void> {
  if (member.type !== "file")
    throw new ArchiveContentError(`${displayName(member.name)}: a file volume must be a regular file`);
  const path = fsPath(dest);
  const info = lstatOf(dest);
  if (info && !info.isFile())
    throw new ArchiveContentError(
      `${displayName(dest)} exists and is not a regular file; not overwriting it`,
    );
  if (!info) mkdirSync(fsPath(parentOf(dest)), { recursive: true });
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;
  const fd = openSync(path, flags, 0o600);
  try {
    await copyData(options.archiveFd, member, fd, Buffer.allocUnsafe(CHUNK), options);
    fchownSync(fd, member.uid, member.gid);
    fchmodSync(fd, member.mode);
    futimesSync(fd, seconds(member), seconds(member));
  } finally {
    closeSync(fd);
  }
  if (member.xattrs.size > 0) await writeXattrs(new Map([[dest, member.xattrs]]));
}
