/**
 * POSIX tar (ustar + pax) headers, written so that GNU tar reads every field back: a pax extended
 * header ('x') carries whatever ustar cannot hold (long or non-ASCII names, big sizes and ids,
 * sub-second times, xattrs as GNU tar's SCHILY.xattr records). Names are byte strings
 * (see names.ts) and go into the archive as exactly those bytes; a name that is not UTF-8 gets a
 * `hdrcharset=BINARY` record, as GNU tar writes it.
 */

import { posixAclToText } from "./acl.js";
import { type ByteString, isUtf8Name } from "./names.js";

export const BLOCK = 512;

export type EntryType = "file" | "hardlink" | "symlink" | "char" | "block" | "dir" | "fifo";

const TYPEFLAG: Record<EntryType, number> = {
  file: 0x30,
  hardlink: 0x31,
  symlink: 0x32,
  char: 0x33,
  block: 0x34,
  dir: 0x35,
  fifo: 0x36,
};
const PAX_TYPEFLAG = 0x78; // 'x': a pax extended header for the next member

export interface TarEntry {
  /** Path inside the archive, without a leading "/" (directories without the trailing "/"). */
  name: ByteString;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  uname?: ByteString;
  gname?: ByteString;
  /** Bytes of data that follow (regular files only). */
  size: number;
  /** Seconds since the epoch; fractions are kept through a pax `mtime` record. */
  mtime: { seconds: number; nanoseconds: number };
  /** Target of a symlink, or the archive name a hard link points to. */
  linkname?: ByteString;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes by name (a byte string), values as raw bytes. */
  xattrs?: ReadonlyMap<ByteString, Buffer>;
}

const ACL_RECORDS = [
  ["system.posix_acl_access", "access"],
  ["system.posix_acl_default", "default"],
] as const;

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

function fitsOctal(value: number, digits: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 8 ** digits - 1;
}

/** Split a name into ustar prefix (<= 155 bytes) and name (<= 100 bytes), at a "/". */
function splitUstarName(name: ByteString): { prefix: ByteString; name: ByteString } | undefined {
  if (name.length <= 100) return { prefix: "", name };
  for (let slash = name.indexOf("/"); slash >= 0; slash = name.indexOf("/", slash + 1)) {
    const prefix = name.slice(0, slash);
    const rest = name.slice(slash + 1);
    if (prefix.length <= 155 && rest.length <= 100 && rest !== "") return { prefix, name: rest };
  }
  return undefined;
}

/** One pax record, "<length> <key>=<value>\n" with the length counting its own digits, as bytes. */
export function paxRecord(key: string, value: ByteString): ByteString {
  const body = key.length + value.length + 3;
  let length = body + String(body).length;
  if (String(length).length !== String(body).length) length = body + String(length).length;
  return `${length} ${key}=${value}\n`;
}

/** Seconds with the fraction's trailing zeros dropped, as GNU tar writes pax times. */
function formatTime(time: TarEntry["mtime"]): string {
  if (time.nanoseconds === 0) return String(time.seconds);
  let fraction = time.nanoseconds;
  let digits = 9;
  while (fraction % 10 === 0) {
    fraction /= 10;
    digits--;
  }
  return `${time.seconds}.${String(fraction).padStart(digits, "0")}`;
}

/** Pax records for whatever ustar cannot hold exactly ("" when it holds everything). */
function paxData(entry: TarEntry, name: ByteString, fits: boolean): ByteString {
  let records = "";
  const link = entry.linkname ?? "";
  const pathRecord = !fits || !PRINTABLE_ASCII.test(name);
  const linkRecord = link.length > 100 || !PRINTABLE_ASCII.test(link);
  const binary = (text: ByteString | undefined) =>
    text !== undefined && !PRINTABLE_ASCII.test(text) && !isUtf8Name(text);
  if (
    (pathRecord && binary(name)) ||
    (linkRecord && binary(link)) ||
    binary(entry.uname) ||
    binary(entry.gname)
  )
    records += paxRecord("hdrcharset", "BINARY");
  if (pathRecord) records += paxRecord("path", name);
  if (linkRecord) records += paxRecord("linkpath", link);
  if (!fitsOctal(entry.size, 11)) records += paxRecord("size", String(entry.size));
  if (!fitsOctal(entry.uid, 7)) records += paxRecord("uid", String(entry.uid));
  if (!fitsOctal(entry.gid, 7)) records += paxRecord("gid", String(entry.gid));
  if (entry.uname && (entry.uname.length > 31 || !PRINTABLE_ASCII.test(entry.uname)))
    records += paxRecord("uname", entry.uname);
  if (entry.gname && (entry.gname.length > 31 || !PRINTABLE_ASCII.test(entry.gname)))
    records += paxRecord("gname", entry.gname);
  if (entry.mtime.nanoseconds !== 0 || !fitsOctal(entry.mtime.seconds, 11))
    records += paxRecord("mtime", formatTime(entry.mtime));
  if (entry.xattrs && entry.xattrs.size > 0) {
    // GNU tar restores ACLs (with --acls) from its own text records, not from the raw xattrs.
    for (const [key, kind] of ACL_RECORDS) {
      const value = entry.xattrs.get(key);
      const text = value ? posixAclToText(value) : undefined;
      if (text) records += paxRecord(`SCHILY.acl.${kind}`, text);
    }
    const keys = [...entry.xattrs.keys()].sort();
    for (const key of keys)
      records += paxRecord(`SCHILY.xattr.${key}`, (entry.xattrs.get(key) as Buffer).toString("latin1"));
  }
  return records;
}

/*
 * The fields are written byte by byte: Buffer#write allocates on every call, and a header has a
 * dozen fields (measured: a header a file made ~40 KB of garbage through Buffer#write).
 */

/** `length - 1` octal digits and a NUL. */
function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  let rest = value;
  for (let i = offset + length - 2; i >= offset; i--) {
    block[i] = 0x30 + (rest % 8);
    rest = Math.floor(rest / 8);
  }
  block[offset + length - 1] = 0;
}

/** A byte string's bytes, at most `length` of them (the rest of the field stays zero). */
function writeBytes(block: Buffer, offset: number, length: number, text: ByteString): void {
  const end = Math.min(length, text.length);
  for (let i = 0; i < end; i++) block[offset + i] = text.charCodeAt(i);
}

/**
 * One 512-byte ustar header at `target[offset]`, checksum included: the entry's owner, time and
 * names, with the type, name, size, mode and link given (a pax header block overrides them).
 */
function writeUstar(
  target: Buffer,
  offset: number,
  entry: TarEntry,
  typeflag: number,
  name: { prefix: ByteString; name: ByteString },
  size: number,
  mode: number,
  linkname: ByteString,
): void {
  const end = offset + BLOCK;
  target.fill(0, offset, end);
  writeBytes(target, offset, 100, name.name);
  writeOctal(target, offset + 100, 8, mode & 0o7777);
  writeOctal(target, offset + 108, 8, Math.min(entry.uid, MAX_OCTAL_7));
  writeOctal(target, offset + 116, 8, Math.min(entry.gid, MAX_OCTAL_7));
  writeOctal(target, offset + 124, 12, Math.min(size, MAX_OCTAL_11));
  writeOctal(target, offset + 136, 12, Math.min(Math.max(entry.mtime.seconds, 0), MAX_OCTAL_11));
  target.fill(0x20, offset + 148, offset + 156);
  target[offset + 156] = typeflag;
  writeBytes(target, offset + 157, 100, linkname);
  writeBytes(target, offset + 257, 8, "ustar\x0000");
  writeBytes(target, offset + 265, 32, entry.uname ?? "");
  writeBytes(target, offset + 297, 32, entry.gname ?? "");
  if (typeflag === TYPEFLAG.char || typeflag === TYPEFLAG.block) {
    writeOctal(target, offset + 329, 8, Math.min(entry.devmajor ?? 0, MAX_OCTAL_7));
    writeOctal(target, offset + 337, 8, Math.min(entry.devminor ?? 0, MAX_OCTAL_7));
  } else {
    writeOctal(target, offset + 329, 8, 0);
    writeOctal(target, offset + 337, 8, 0);
  }
  writeBytes(target, offset + 345, 155, name.prefix);
  let sum = 0;
  for (let i = offset; i < end; i++) sum += target[i] as number;
  writeOctal(target, offset + 148, 7, sum);
  target[offset + 155] = 0x20;
}

const round = (size: number) => Math.ceil(size / BLOCK) * BLOCK;

/** An entry's header blocks, measured before they are written (see `headerLength`, `writeHeader`). */
export interface PreparedHeader {
  entry: TarEntry;
  name: ByteString;
  ustarName: { prefix: ByteString; name: ByteString };
  pax: ByteString;
  /** Bytes of the header blocks: the pax header and its data (if any), then the ustar block. */
  length: number;
}

export function prepareHeader(entry: TarEntry): PreparedHeader {
  const name = entry.type === "dir" && !entry.name.endsWith("/") ? `${entry.name}/` : entry.name;
  const split = splitUstarName(name);
  const pax = paxData(entry, name, split !== undefined);
  // With a pax path the ustar name is only a fallback for old readers: an ASCII tail of the name.
  const ustarName = split && PRINTABLE_ASCII.test(name) ? split : { prefix: "", name: asciiTail(name, 100) };
  const length = pax.length === 0 ? BLOCK : 2 * BLOCK + round(pax.length);
  return { entry, name, ustarName, pax, length };
}

function asciiTail(name: ByteString, length: number): string {
  return name.replace(/[^\x20-\x7e]/g, "_").slice(-length);
}

/** Write a prepared header at `target[offset]`; `target` has `header.length` bytes of room there. */
export function writeHeader(header: PreparedHeader, target: Buffer, offset: number): void {
  const { entry } = header;
  let at = offset;
  if (header.pax.length > 0) {
    const trimmed = header.name.endsWith("/") ? header.name.slice(0, -1) : header.name;
    const base = trimmed.slice(trimmed.lastIndexOf("/") + 1);
    const tail = PRINTABLE_ASCII.test(base) ? base.slice(-89) : asciiTail(base, 89);
    const paxName = { prefix: "", name: `PaxHeaders/${tail}` };
    writeUstar(target, at, entry, PAX_TYPEFLAG, paxName, header.pax.length, 0o644, "");
    at += BLOCK;
    writeBytes(target, at, header.pax.length, header.pax);
    const padded = round(header.pax.length);
    target.fill(0, at + header.pax.length, at + padded);
    at += padded;
  }
  const size = entry.type === "file" ? entry.size : 0;
  writeUstar(
    target,
    at,
    entry,
    TYPEFLAG[entry.type],
    header.ustarName,
    size,
    entry.mode,
    entry.linkname ?? "",
  );
}

/** The header block(s) of one entry as a new buffer. */
export function encodeHeader(entry: TarEntry): Buffer {
  const header = prepareHeader(entry);
  const block = Buffer.allocUnsafe(header.length);
  writeHeader(header, block, 0);
  return block;
}

/** Padding that brings `size` bytes of data to a whole number of blocks. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/** Two zero blocks: the end-of-archive marker. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
