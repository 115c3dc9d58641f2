/**
 * POSIX tar (ustar + pax) headers, written so that GNU tar reads every field back: a pax extended
 * header ('x') carries whatever ustar cannot hold (long or non-ASCII names, big sizes and ids,
 * sub-second times, xattrs as GNU tar's SCHILY.xattr records).
 */

import { posixAclToText } from "./acl.js";

export const BLOCK = 512;

export type EntryType = "file" | "hardlink" | "symlink" | "char" | "block" | "dir" | "fifo";

const TYPEFLAG: Record<EntryType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

export interface TarEntry {
  /** Path inside the archive, without a leading "/" (directories without the trailing "/"). */
  name: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  /** Bytes of data that follow (regular files only). */
  size: number;
  /** Seconds since the epoch; fractions are kept through a pax `mtime` record. */
  mtime: { seconds: number; nanoseconds: number };
  /** Target of a symlink, or the archive name a hard link points to. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, values as raw bytes. */
  xattrs?: ReadonlyMap<string, Buffer>;
}

const ACL_RECORDS = [
  ["system.posix_acl_access", "access"],
  ["system.posix_acl_default", "default"],
] as const;

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

function fitsOctal(value: number, digits: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 8 ** digits - 1;
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  const text = value.toString(8).padStart(length - 1, "0");
  block.write(`${text}\0`, offset, length, "ascii");
}

function writeText(block: Buffer, offset: number, length: number, text: string): void {
  Buffer.from(text, "utf8").copy(block, offset, 0, length);
}

/** Split a name into ustar prefix (<= 155 bytes) and name (<= 100 bytes), at a "/". */
function splitUstarName(name: string): { prefix: string; name: string } | undefined {
  const bytes = Buffer.byteLength(name);
  if (bytes <= 100) return { prefix: "", name };
  for (let slash = name.indexOf("/"); slash >= 0; slash = name.indexOf("/", slash + 1)) {
    const prefix = name.slice(0, slash);
    const rest = name.slice(slash + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest !== "") {
      return { prefix, name: rest };
    }
  }
  return undefined;
}

/** One pax record: "<length> <key>=<value>\n", the length counting its own digits. */
export function paxRecord(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, "utf8"), Buffer.from(value), Buffer.from("\n")]);
  let length = body.length + String(body.length).length;
  if (String(length).length !== String(body.length).length) length = body.length + String(length).length;
  return Buffer.concat([Buffer.from(String(length), "ascii"), body]);
}

function formatTime(time: TarEntry["mtime"]): string {
  if (time.nanoseconds === 0) return String(time.seconds);
  return `${time.seconds}.${String(time.nanoseconds).padStart(9, "0").replace(/0+$/, "")}`;
}

/** Pax records for whatever ustar cannot hold exactly. */
function paxRecords(entry: TarEntry, ustarName: { prefix: string; name: string } | undefined): Buffer[] {
  const records: Buffer[] = [];
  const ascii = (text: string) => /^[\x20-\x7e]*$/.test(text);
  if (!ustarName || !ascii(entry.name)) records.push(paxRecord("path", entry.name));
  const link = entry.linkname ?? "";
  if (Buffer.byteLength(link) > 100 || !ascii(link)) records.push(paxRecord("linkpath", link));
  if (!fitsOctal(entry.size, 11)) records.push(paxRecord("size", String(entry.size)));
  if (!fitsOctal(entry.uid, 7)) records.push(paxRecord("uid", String(entry.uid)));
  if (!fitsOctal(entry.gid, 7)) records.push(paxRecord("gid", String(entry.gid)));
  if (entry.uname && (Buffer.byteLength(entry.uname) > 31 || !ascii(entry.uname)))
    records.push(paxRecord("uname", entry.uname));
  if (entry.gname && (Buffer.byteLength(entry.gname) > 31 || !ascii(entry.gname)))
    records.push(paxRecord("gname", entry.gname));
  if (entry.mtime.nanoseconds !== 0 || !fitsOctal(entry.mtime.seconds, 11))
    records.push(paxRecord("mtime", formatTime(entry.mtime)));
  // GNU tar restores ACLs (with --acls) from its own text records, not from the raw xattrs.
  for (const [key, kind] of ACL_RECORDS) {
    const value = entry.xattrs?.get(key);
    const text = value ? posixAclToText(value) : undefined;
    if (text) records.push(paxRecord(`SCHILY.acl.${kind}`, text));
  }
  const xattrs = [...(entry.xattrs ?? new Map<string, Buffer>())].sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [key, value] of xattrs) records.push(paxRecord(`SCHILY.xattr.${key}`, value));
  return records;
}

function ustarBlock(fields: {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeText(block, 0, 100, fields.name);
  writeOctal(block, 100, 8, fields.mode & 0o7777);
  writeOctal(block, 108, 8, Math.min(fields.uid, MAX_OCTAL_7));
  writeOctal(block, 116, 8, Math.min(fields.gid, MAX_OCTAL_7));
  writeOctal(block, 124, 12, Math.min(fields.size, MAX_OCTAL_11));
  writeOctal(block, 136, 12, Math.min(Math.max(fields.mtime, 0), MAX_OCTAL_11));
  block.fill(0x20, 148, 156);
  block.write(fields.typeflag, 156, 1, "ascii");
  writeText(block, 157, 100, fields.linkname);
  block.write("ustar\x0000", 257, 8, "binary");
  writeText(block, 265, 32, fields.uname);
  writeText(block, 297, 32, fields.gname);
  writeOctal(block, 329, 8, Math.min(fields.devmajor, MAX_OCTAL_7));
  writeOctal(block, 337, 8, Math.min(fields.devminor, MAX_OCTAL_7));
  writeText(block, 345, 155, fields.prefix);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return block;
}

/** Padding that brings `size` bytes of data to a whole number of blocks. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/** The header block(s) of one entry: a pax header and its records when needed, then the ustar header. */
export function encodeHeader(entry: TarEntry): Buffer {
  const name = entry.type === "dir" && !entry.name.endsWith("/") ? `${entry.name}/` : entry.name;
  const ustarName = splitUstarName(name);
  const records = paxRecords({ ...entry, name }, ustarName);
  // With a pax path the ustar name is only a fallback for old readers: an ASCII tail of the name.
  const truncated = ustarName ?? { prefix: "", name: name.replace(/[^\x20-\x7e]/g, "_").slice(-100) };
  const common = {
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    mtime: entry.mtime.seconds,
    uname: entry.uname ?? "",
    gname: entry.gname ?? "",
  };
  const main = ustarBlock({
    ...common,
    ...truncated,
    size: entry.type === "file" ? entry.size : 0,
    typeflag: TYPEFLAG[entry.type],
    linkname: entry.linkname ?? "",
    devmajor: entry.devmajor ?? 0,
    devminor: entry.devminor ?? 0,
  });
  if (records.length === 0) return main;
  const data = Buffer.concat(records);
  const base = name.replace(/\/$/, "").split("/").pop() ?? "";
  const pax = ustarBlock({
    ...common,
    name: `PaxHeaders/${base.replace(/[^\x20-\x7e]/g, "_")}`.slice(0, 100),
    prefix: "",
    mode: 0o644,
    size: data.length,
    typeflag: "x",
    linkname: "",
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([pax, data, padding(data.length), main]);
}

/** Two zero blocks: the end-of-archive marker. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
