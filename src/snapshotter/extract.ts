import {
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
  readSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeSync,
} from "node:fs";
import path from "node:path";
import { run } from "../system/exec.js";
import { writeXattrs } from "../system/xattr.js";
import type { Member } from "../tar/reader.js";
import { cleanName } from "./archive-map.js";
import { ArchiveContentError } from "./volume-index.js";

const CHUNK = 1024 * 1024;

/** A member's path inside its volume, checked: relative, no "." or ".." segments, no NUL. */
export function memberPath(member: Member, root: string): string {
  const name = cleanName(member.name);
  if (name === root) return "";
  if (!name.startsWith(`${root}/`)) throw new ArchiveContentError(`${member.name} is not inside ${root}`);
  const relative = name.slice(root.length + 1);
  const parts = relative.split("/");
  if (relative.includes("\0") || parts.some((part) => part === "" || part === "." || part === "..")) {
    throw new ArchiveContentError(`archive entry ${JSON.stringify(member.name)} would escape its volume`);
  }
  return relative;
}

/**
 * Check every member of a volume before anything on disk changes: names stay inside the volume,
 * hard links point at an earlier member of the same volume, only types we can restore.
 */
export function checkVolumeMembers(members: readonly Member[], root: string): void {
  const seen = new Set<string>([""]);
  // What each path is by the time later members arrive: nothing may be stored below a non-directory.
  const kinds = new Map<string, Member["type"]>();
  for (const member of members) {
    const relative = memberPath(member, root);
    const parts = relative.split("/");
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join("/");
      const kind = kinds.get(ancestor);
      if (kind !== undefined && kind !== "dir") {
        throw new ArchiveContentError(
          `${member.name} is stored below ${ancestor}, which the archive makes a ${kind}`,
        );
      }
    }
    if (relative !== "") kinds.set(relative, member.type);
    if (member.type === "other")
      throw new ArchiveContentError(`${member.name}: unsupported entry type '${member.typeflag}'`);
    if (member.type === "hardlink") {
      const target = cleanName(member.linkname);
      if (target !== root && !target.startsWith(`${root}/`)) {
        throw new ArchiveContentError(
          `${member.name} is a hard link to ${member.linkname}, outside its volume`,
        );
      }
      const targetRelative = memberPath({ ...member, name: target }, root);
      if (!seen.has(targetRelative) || targetRelative === "") {
        throw new ArchiveContentError(
          `${member.name} is a hard link to ${member.linkname}, which comes nowhere before it`,
        );
      }
    }
    seen.add(relative);
  }
}

/** Copy one member's data from the archive into an open file, in chunks. */
function copyData(
  archiveFd: number,
  member: Member,
  fd: number,
  buffer: Buffer,
  onBytes: (n: number) => void,
): void {
  let done = 0;
  while (done < member.size) {
    const want = Math.min(buffer.length, member.size - done);
    const got = readSync(archiveFd, buffer, 0, want, member.dataOffset + done);
    if (got !== want) throw new ArchiveContentError(`${member.name}: archive ended inside the data`);
    let written = 0;
    while (written < got) written += writeSync(fd, buffer, written, got - written);
    done += got;
    onBytes(got);
  }
}

const seconds = (member: Member) => member.mtime.seconds + member.mtime.nanoseconds / 1e9;

function removeExisting(full: string): void {
  const info = lstatSync(full, { throwIfNoEntry: false });
  if (info) rmSync(full, { recursive: info.isDirectory(), force: true });
}

export interface ExtractOptions {
  archiveFd: number;
  onBytes: (n: number) => void;
}

/**
 * Restore a directory volume's members into `dest` (already emptied). Parent directories are
 * only ever real directories we checked: a symlink from the archive or on disk is never written
 * through. Directory metadata is applied last, deepest first, so their mtimes stay as archived.
 */
export async function extractDirectory(
  members: readonly Member[],
  root: string,
  dest: string,
  options: ExtractOptions,
): Promise<number> {
  const buffer = Buffer.allocUnsafe(CHUNK);
  const dirs = new Set<string>([""]);
  const dirMeta: Array<{ full: string; member: Member }> = [];
  const xattrs = new Map<string, Map<string, Buffer>>();
  const devices: Array<{ full: string; member: Member }> = [];

  const ensureParent = (relative: string) => {
    const parts = relative.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join("/");
      if (dirs.has(sub)) continue;
      const full = path.join(dest, sub);
      const info = lstatSync(full, { throwIfNoEntry: false });
      if (info?.isSymbolicLink() || (info && !info.isDirectory())) {
        throw new ArchiveContentError(
          `${sub} in the archive is not a directory, yet entries are stored under it`,
        );
      }
      if (!info) mkdirSync(full, { mode: 0o755 });
      dirs.add(sub);
    }
  };

  // A path that was a directory and is replaced by something else takes its subdirectories along.
  const forget = (relative: string) => {
    if (!dirs.delete(relative)) return;
    for (const known of dirs) if (known.startsWith(`${relative}/`)) dirs.delete(known);
  };

  for (const member of members) {
    const relative = memberPath(member, root);
    const full = relative === "" ? dest : path.join(dest, relative);
    if (relative !== "") ensureParent(relative);
    if (member.xattrs.size > 0 && member.type !== "symlink") xattrs.set(full, member.xattrs);
    switch (member.type) {
      case "dir": {
        if (relative !== "") {
          const info = lstatSync(full, { throwIfNoEntry: false });
          if (info && !info.isDirectory()) removeExisting(full);
          if (!info?.isDirectory()) mkdirSync(full, { mode: 0o700 });
          dirs.add(relative);
        }
        dirMeta.push({ full, member });
        break;
      }
      case "file": {
        removeExisting(full);
        forget(relative);
        const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
        const fd = openSync(full, flags, 0o600);
        try {
          copyData(options.archiveFd, member, fd, buffer, options.onBytes);
          fchownSync(fd, member.uid, member.gid);
          fchmodSync(fd, member.mode);
          futimesSync(fd, seconds(member), seconds(member));
        } finally {
          closeSync(fd);
        }
        break;
      }
      case "symlink": {
        removeExisting(full);
        forget(relative);
        symlinkSync(member.linkname, full);
        lchownSync(full, member.uid, member.gid);
        lutimesSync(full, seconds(member), seconds(member));
        break;
      }
      case "hardlink": {
        const targetRelative = memberPath({ ...member, name: cleanName(member.linkname) }, root);
        ensureParent(targetRelative);
        const target = path.join(dest, targetRelative);
        const info = lstatSync(target, { throwIfNoEntry: false });
        if (!info || info.isDirectory())
          throw new ArchiveContentError(`${member.name}: hard link target ${member.linkname} missing`);
        removeExisting(full);
        forget(relative);
        linkSync(target, full);
        break;
      }
      case "char":
      case "block":
      case "fifo": {
        removeExisting(full);
        forget(relative);
        devices.push({ full, member });
        break;
      }
      default:
        throw new ArchiveContentError(`${member.name}: unsupported entry type '${member.typeflag}'`);
    }
  }
  // Node cannot make device nodes or FIFOs: mknod(1) and mkfifo(1) own that.
  for (const { full, member } of devices) {
    if (member.type === "fifo") await run("mkfifo", ["--", full]);
    else
      await run("mknod", [
        "--",
        full,
        member.type === "char" ? "c" : "b",
        String(member.devmajor),
        String(member.devminor),
      ]);
    chownSync(full, member.uid, member.gid);
    chmodSync(full, member.mode);
    utimesSync(full, seconds(member), seconds(member));
  }
  await writeXattrs(xattrs);
  for (const { full, member } of dirMeta.reverse()) {
    chownSync(full, member.uid, member.gid);
    chmodSync(full, member.mode);
    utimesSync(full, seconds(member), seconds(member));
  }
  return members.length;
}

/**
 * Restore a file volume in place: the same inode is rewritten, because a running container's
 * single-file bind mount holds that inode (a rename would leave it seeing the old file).
 */
export async function extractFile(member: Member, dest: string, options: ExtractOptions): Promise<void> {
  if (member.type !== "file")
    throw new ArchiveContentError(`${member.name}: a file volume must be a regular file`);
  const info = lstatSync(dest, { throwIfNoEntry: false });
  if (info && !info.isFile())
    throw new ArchiveContentError(`${dest} exists and is not a regular file; not overwriting it`);
  if (!info) mkdirSync(path.dirname(dest), { recursive: true });
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;
  const fd = openSync(dest, flags, 0o600);
  try {
    copyData(options.archiveFd, member, fd, Buffer.allocUnsafe(CHUNK), options.onBytes);
    fchownSync(fd, member.uid, member.gid);
    fchmodSync(fd, member.mode);
    futimesSync(fd, seconds(member), seconds(member));
  } finally {
    closeSync(fd);
  }
  if (member.xattrs.size > 0) await writeXattrs(new Map([[dest, member.xattrs]]));
}
