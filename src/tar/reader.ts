import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { StowageError } from "../system/errors.js";
import { TimeSlice } from "../system/signals.js";
import { BLOCK } from "./header.js";
import type { ByteString } from "./names.js";

/** The archive is not a tar archive we can trust: bad checksum, truncated member, bad pax record. */
export class TarFormatError extends StowageError {
  constructor(file: string, offset: number, problem: string) {
    super("INVALID_INPUT", `${file}: not a valid tar archive at byte ${offset}: ${problem}`);
  }
}

export type MemberType = "file" | "hardlink" | "symlink" | "char" | "block" | "dir" | "fifo" | "other";

/**
 * One member of an archive, as found by walking its headers (data is not read). Names, link
 * targets and xattr names are byte strings (tar/names.ts): exactly the bytes in the archive.
 */
export interface Member {
  name: ByteString;
  type: MemberType;
  /** The raw typeflag character. */
  typeflag: string;
  /** Where this member's first header block starts (its pax or GNU long-name header, if any). */
  headerOffset: number;
  /** Where its data starts, and how many bytes it has. */
  dataOffset: number;
  size: number;
  /** Where the next member starts. */
  endOffset: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: { seconds: number; nanoseconds: number };
  linkname: ByteString;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
}

export interface ArchiveScan {
  members: Member[];
  /** Offset of the end-of-archive marker: where appended members go. */
  end: number;
  /** Size of the file. */
  fileSize: number;
}

const TYPES: Record<string, MemberType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

function cString(block: Buffer, offset: number, length: number): Buffer {
  const slice = block.subarray(offset, offset + length);
  const nul = slice.indexOf(0);
  return nul < 0 ? slice : slice.subarray(0, nul);
}

/** Octal (NUL/space terminated) or GNU base-256 numbers. */
function number(block: Buffer, offset: number, length: number): number {
  const field = block.subarray(offset, offset + length);
  if ((field[0] ?? 0) & 0x80) {
    let value = 0n;
    for (const [index, byte] of field.entries())
      value = (value << 8n) | BigInt(index === 0 ? byte & 0x7f : byte);
    return Number(value);
  }
  const text = field
    .toString("latin1")
    .replace(/[\0 ]+$/, "")
    .trim();
  return text === "" ? 0 : Number.parseInt(text, 8);
}

function checksumOk(block: Buffer): boolean {
  const stored = number(block, 148, 8);
  let unsigned = 0;
  for (let i = 0; i < BLOCK; i++) unsigned += i >= 148 && i < 156 ? 0x20 : (block[i] as number);
  return stored === unsigned;
}

function isZero(block: Buffer): boolean {
  for (const byte of block) if (byte !== 0) return false;
  return true;
}

/** Pax records: "<len> <key>=<value>\n", values kept as raw bytes. */
export function parsePax(data: Buffer): Map<string, Buffer> | undefined {
  const records = new Map<string, Buffer>();
  let offset = 0;
  while (offset < data.length) {
    if (data[offset] === 0) break;
    const space = data.indexOf(0x20, offset);
    if (space < 0) return undefined;
    const length = Number(data.subarray(offset, space).toString("ascii"));
    if (!Number.isInteger(length) || length <= space - offset || offset + length > data.length)
      return undefined;
    const record = data.subarray(space + 1, offset + length - 1);
    if (data[offset + length - 1] !== 0x0a) return undefined;
    const equals = record.indexOf(0x3d);
    if (equals < 0) return undefined;
    records.set(record.subarray(0, equals).toString("latin1"), record.subarray(equals + 1));
    offset += length;
  }
  return records;
}

function paxTime(value: string): { seconds: number; nanoseconds: number } {
  const [whole = "0", fraction = ""] = value.split(".");
  return { seconds: Number(whole), nanoseconds: Number(fraction.padEnd(9, "0").slice(0, 9)) };
}

const round = (size: number) => Math.ceil(size / BLOCK) * BLOCK;

/**
 * Walk an archive's headers from the start to its end-of-archive marker, checking every checksum
 * and that every member's data is there. The end is found this way, never assumed to be the last
 * 1024 bytes (GNU tar pads archives to 10 KiB records). A 0-byte file is an empty archive. Every
 * 20 ms it lets the event loop run (signals), and stops when `signal` is aborted.
 */
export async function scanArchive(file: string, signal?: AbortSignal): Promise<ArchiveScan> {
  const slice = new TimeSlice(signal);
  const fd = openSync(file, "r");
  try {
    const fileSize = fstatSync(fd).size;
    const members: Member[] = [];
    const block = Buffer.alloc(BLOCK);
    let offset = 0;
    let pending: { pax?: Map<string, Buffer>; longName?: string; longLink?: string; start?: number } = {};
    const readBlock = (at: number) => readSync(fd, block, 0, BLOCK, at) === BLOCK;
    const readData = (at: number, size: number) => {
      const data = Buffer.alloc(size);
      if (readSync(fd, data, 0, size, at) !== size)
        throw new TarFormatError(file, at, "truncated extended header");
      return data;
    };
    while (true) {
      if (slice.due()) await slice.pause();
      if (offset === fileSize && members.length === 0 && pending.start === undefined)
        return { members, end: 0, fileSize };
      if (!readBlock(offset))
        throw new TarFormatError(file, offset, "archive ends without an end-of-archive marker");
      if (isZero(block)) {
        if (pending.start !== undefined)
          throw new TarFormatError(file, offset, "extended header without a member");
        return { members, end: offset, fileSize };
      }
      if (!checksumOk(block)) throw new TarFormatError(file, offset, "header checksum mismatch");
      const typeflag = String.fromCharCode(block[156] ?? 0);
      const size = number(block, 124, 12);
      const dataOffset = offset + BLOCK;
      if (dataOffset + size > fileSize)
        throw new TarFormatError(file, offset, `member data truncated (${size} bytes declared)`);
      const start = pending.start ?? offset;
      if (typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K") {
        if (size > 64 * 1024 * 1024) throw new TarFormatError(file, offset, "extended header too large");
        const data = readData(dataOffset, size);
        if (typeflag === "x") {
          const pax = parsePax(data);
          if (!pax) throw new TarFormatError(file, offset, "malformed pax record");
          pending = { ...pending, pax, start };
        } else if (typeflag === "L") {
          pending = { ...pending, longName: cString(data, 0, data.length).toString("latin1"), start };
        } else if (typeflag === "K") {
          pending = { ...pending, longLink: cString(data, 0, data.length).toString("latin1"), start };
        }
        // A global header ('g') applies to nothing we keep; it may also be a skip marker of an append.
        offset = dataOffset + round(size);
        continue;
      }
      const pax = pending.pax ?? new Map<string, Buffer>();
      const text = (key: string) => pax.get(key)?.toString("latin1");
      const prefix = block.subarray(257, 263).toString("latin1").startsWith("ustar")
        ? cString(block, 345, 155)
        : Buffer.alloc(0);
      const baseName = cString(block, 0, 100);
      const ustarName =
        prefix.length > 0
          ? `${prefix.toString("latin1")}/${baseName.toString("latin1")}`
          : baseName.toString("latin1");
      const name = text("path") ?? pending.longName ?? ustarName;
      const realSize = text("size") !== undefined ? Number(text("size")) : size;
      const type = TYPES[typeflag] ?? "other";
      const dataSize =
        type === "file" ? realSize : typeflag === "1" || typeflag === "2" || typeflag === "5" ? 0 : realSize;
      if (dataOffset + dataSize > fileSize)
        throw new TarFormatError(file, offset, `member data truncated (${dataSize} bytes declared)`);
      const xattrs = new Map<string, Buffer>();
      for (const [key, value] of pax) if (key.startsWith("SCHILY.xattr.")) xattrs.set(key.slice(13), value);
      const mtimeText = text("mtime");
      members.push({
        name,
        type,
        typeflag,
        headerOffset: start,
        dataOffset,
        size: dataSize,
        endOffset: dataOffset + round(dataSize),
        mode: number(block, 100, 8) & 0o7777,
        uid: text("uid") !== undefined ? Number(text("uid")) : number(block, 108, 8),
        gid: text("gid") !== undefined ? Number(text("gid")) : number(block, 116, 8),
        mtime:
          mtimeText !== undefined ? paxTime(mtimeText) : { seconds: number(block, 136, 12), nanoseconds: 0 },
        linkname: text("linkpath") ?? pending.longLink ?? cString(block, 157, 100).toString("latin1"),
        devmajor: number(block, 329, 8),
        devminor: number(block, 337, 8),
        xattrs,
      });
      pending = {};
      offset = dataOffset + round(dataSize);
    }
  } finally {
    closeSync(fd);
  }
}
