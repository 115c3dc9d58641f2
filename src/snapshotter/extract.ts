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
  lutimesSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  symlinkSync,
  utimesSync,
  writeSync,
} from "node:fs";
import { run } from "../system/exec.js";
import type { TimeSlice } from "../system/signals.js";
import { writeXattrs, XattrWriter } from "../system/xattr.js";
import { type ByteString, displayName, fsPath } from "../tar/names.js";
import type { Member } from "../tar/reader.js";
import { cleanName } from "./archive-map.js";
import { ArchiveContentError } from "./errors.js";
import { FileWrites } from "./file-writes.js";
import { lstatOf, removeExisting } from "./remove-tree.js";
import { memberPath } from "./volume-check.js";

const CHUNK = 1024 * 1024;

export interface ExtractOptions {
  archiveFd: number;
  onBytes: (n: number) => void;
  warn: (message: string) => void;
  slice?: TimeSlice;
  /** Worker threads that write a directory volume's regular files (0: the main thread does). */
  threads?: number;
  /** The process's umask is 0: files are created with their permission bits (FileWrites). */
  exactModes?: boolean;
}

const seconds = (member: Member) => member.mtime.seconds + member.mtime.nanoseconds / 1e9;

const parentOf = (file: ByteString) => file.slice(0, file.lastIndexOf("/")) || "/";

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

/** What a directory gets once everything inside it is restored. */
interface DirectoryMeta {
  full: ByteString;
  mode: number;
  uid: number;
  gid: number;
  time: number;
  xattrs: ReadonlyMap<string, Buffer>;
}

/** A directory volume's extraction: members told in archive order, then `finish`; `close` always. */
export interface DirectoryExtractor {
  /** `data`: a regular file's content when the scan has it at hand (valid until this settles). */
  add(member: Member, data?: Buffer): void | Promise<void>;
  /** Everything written and every directory's metadata applied; returns the entries restored. */
  finish(): Promise<number>;
  /** Stops the threads and the xattr helper (after a failure: at once); nothing is written after. */
  close(): Promise<void>;
}

/**
 * Restore a directory volume's members into `dest` (already emptied). Parent directories are only
 * ever real directories we checked: a symlink from the archive or on disk is never written through.
 * Regular files are written by FileWrites (in worker threads when `threads` > 0) while the members
 * after them are read; a member whose path a file write still holds, and a hard link to such a
 * file, waits for those writes first. Extended attributes follow a file once it is written, a
 * directory's once its contents are (a default ACL would otherwise be inherited by them). Directory
 * metadata is applied last, deepest first, so their mtimes stay as archived. Names are bytes: what
 * the archive holds is exactly what is created.
 */
export function directoryExtractor(
  root: ByteString,
  dest: ByteString,
  options: ExtractOptions,
): DirectoryExtractor {
  const dirs = new Set<string>([""]);
  const dirMeta: DirectoryMeta[] = [];
  const xattrs = new XattrWriter();
  const dev = (lstatOf(dest) as BigIntStats).dev;
  const replace = (full: ByteString) => removeExisting(full, dev, options.warn);

  // A path that was a directory and is replaced by something else takes its subdirectories along.
  const forget = (relative: ByteString) => {
    if (!dirs.delete(relative)) return;
    for (const known of dirs) if (known.startsWith(`${relative}/`)) dirs.delete(known);
  };
  const files = new FileWrites({
    archiveFd: options.archiveFd,
    threads: options.threads ?? 0,
    exactModes: options.exactModes ?? false,
    onBytes: options.onBytes,
    inTheWay: (full, relative) => {
      replace(full);
      forget(relative);
    },
    written: (full, attrs) => xattrs.add(full, attrs),
  });

  const ensureParent = (relative: ByteString) => {
    const slash = relative.lastIndexOf("/");
    if (slash < 0 || dirs.has(relative.slice(0, slash))) return;
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

  /** Before something at `relative` is replaced here: no file write may still hold it or be below it. */
  const settle = (relative: ByteString) =>
    files.busy(relative) || dirs.has(relative) ? files.drain() : undefined;

  let entries = 0;
  /** Everything but a regular file (those are FileWrites'), on this thread. */
  const addOther = async (member: Member, relative: ByteString, full: ByteString) => {
    const path = fsPath(full);
    switch (member.type) {
      case "dir": {
        if (relative !== "") {
          const info = lstatOf(full);
          if (info && !info.isDirectory()) {
            await settle(relative);
            replace(full);
          }
          if (!info?.isDirectory()) mkdirSync(path, { mode: 0o700 });
          dirs.add(relative);
        }
        dirMeta.push({
          full,
          mode: member.mode,
          uid: member.uid,
          gid: member.gid,
          time: seconds(member),
          xattrs: member.xattrs,
        });
        return;
      }
      case "symlink":
        await settle(relative);
        replace(full);
        forget(relative);
        symlinkSync(fsPath(member.linkname), path);
        lchownSync(path, member.uid, member.gid);
        lutimesSync(path, seconds(member), seconds(member));
        return;
      case "hardlink": {
        const targetRelative = memberPath({ name: cleanName(member.linkname) }, root);
        ensureParent(targetRelative);
        if (files.busy(targetRelative)) await files.drain();
        const target = `${dest}/${targetRelative}`;
        const info = lstatOf(target);
        if (!info || info.isDirectory())
          throw new ArchiveContentError(
            `${displayName(member.name)}: hard link target ${displayName(member.linkname)} missing`,
          );
        await settle(relative);
        replace(full);
        forget(relative);
        linkSync(fsPath(target), path);
        return;
      }
      case "char":
      case "block":
      case "fifo":
        await settle(relative);
        replace(full);
        forget(relative);
        await makeNode(full, member);
        chownSync(path, member.uid, member.gid);
        chmodSync(path, member.mode);
        utimesSync(path, seconds(member), seconds(member));
        xattrs.add(full, member.xattrs);
        return;
      default:
        throw new ArchiveContentError(
          `${displayName(member.name)}: unsupported entry type '${member.typeflag}'`,
        );
    }
  };

  const add = (member: Member, data?: Buffer): void | Promise<void> => {
    entries++;
    if (options.slice?.due()) return options.slice.pause().then(() => addNow(member, data));
    return addNow(member, data);
  };
  const addNow = (member: Member, data?: Buffer): void | Promise<void> => {
    const relative = memberPath(member, root);
    const full = relative === "" ? dest : `${dest}/${relative}`;
    if (relative !== "") ensureParent(relative);
    if (member.type !== "file") return addOther(member, relative, full);
    if (dirs.has(relative)) {
      // A directory the archive made is replaced by a file: what is below it is written first.
      return files.drain().then(() => {
        replace(full);
        forget(relative);
        return files.add(full, relative, member, data);
      });
    }
    if (files.busy(relative)) return files.drain().then(() => files.add(full, relative, member, data));
    return files.add(full, relative, member, data);
  };

  const finish = async () => {
    await files.drain();
    const done = [...dirMeta].reverse();
    for (const { full, xattrs: attrs } of done) xattrs.add(full, attrs);
    await xattrs.close();
    for (const { full, mode, uid, gid, time } of done) {
      const path = fsPath(full);
      chownSync(path, uid, gid);
      chmodSync(path, mode);
      utimesSync(path, time, time);
    }
    return entries;
  };
  const close = async () => {
    await files.close();
    await xattrs.close().catch(() => {});
  };
  return { add, finish, close };
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
    const buffer = Buffer.allocUnsafe(CHUNK);
    let done = 0;
    while (done < member.size) {
      const want = Math.min(buffer.length, member.size - done);
      const got = readSync(options.archiveFd, buffer, 0, want, member.dataOffset + done);
      if (got !== want)
        throw new ArchiveContentError(`${displayName(member.name)}: archive ended inside the data`);
      let written = 0;
      while (written < got) written += writeSync(fd, buffer, written, got - written);
      done += got;
      options.onBytes(got);
      if (options.slice?.due()) await options.slice.pause();
    }
    fchownSync(fd, member.uid, member.gid);
    fchmodSync(fd, member.mode);
    futimesSync(fd, seconds(member), seconds(member));
  } finally {
    closeSync(fd);
  }
  if (member.xattrs.size > 0) await writeXattrs(new Map([[dest, member.xattrs]]));
}
