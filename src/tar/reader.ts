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
  /** Offset of the end-of-archive marker: where appended members go. */
  end: number;
  /** Size of the file. */
  fileSize: number;
}

export interface ScanOptions {
  /**
   * Told each member in archive order (awaited when it returns a promise); nothing is kept, so
   * memory does not grow with the archive.
   */
  onMember: (member: Member) => void | Promise<void>;
  signal?: AbortSignal;
  /** Read through this descriptor of `file` (left open) instead of opening the file. */
  fd?: number;
  /** Scan only the members in [from, to): both member boundaries found by an earlier scan. */
  range?: readonly [number, number];
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

const isSpace = (byte: number) => byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);

/** Octal (NUL/space terminated) or GNU base-256 numbers; NaN for anything else. */
function number(block: Buffer, offset: number, length: number): number {
  const end = offset + length;
  if ((block[offset] ?? 0) & 0x80) {
    let value = BigInt((block[offset] as number) & 0x7f);
    for (let i = offset + 1; i < end; i++) value = (value << 8n) | BigInt(block[i] as number);
    return Number(value);
  }
  let i = offset;
  while (i < end && isSpace(block[i] as number)) i++;
  let value = 0;
  const first = i;
  for (; i < end; i++) {
    const byte = block[i] as number;
    if (byte < 0x30 || byte > 0x37) break;
    value = value * 8 + (byte - 0x30);
  }
  if (i > first) return value;
  for (; i < end; i++) if (block[i] !== 0 && block[i] !== 0x20) return Number.NaN;
  return 0;
}

/** The header's byte sum with its checksum field read as spaces, as POSIX defines it. */
function checksumOk(block: Buffer): boolean {
  const stored = number(block, 148, 8);
  let unsigned = 8 * 0x20;
  if (block.byteOffset % 4 === 0) {
    // Four bytes at a time: two 16-bit lanes of byte sums, which 128 words cannot overflow.
    const words = new Uint32Array(block.buffer, block.byteOffset, BLOCK / 4);
    let lanes = 0;
    for (let i = 0; i < BLOCK / 4; i++) {
      if (i === 37 || i === 38) continue; // bytes 148-155
      const word = words[i] as number;
      lanes += (word & 0xff00ff) + ((word >>> 8) & 0xff00ff);
    }
    unsigned += (lanes & 0xffff) + (lanes >>> 16);
  } else {
    for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) unsigned += block[i] as number;
  }
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

const WINDOW = 256 * 1024;

/** An archive read through one window: one read serves the headers of many small members. */
class Window {
  private readonly buffer = Buffer.alloc(WINDOW);
  private start = 0;
  private length = 0;

  constructor(private readonly fd: number) {}

  /** Up to `size` bytes at `at` (fewer at the end of the file), valid until the next call. */
  bytes(at: number, size: number): Buffer {
    if (size > WINDOW) {
      const data = Buffer.alloc(size);
      return data.subarray(0, readSync(this.fd, data, 0, size, at));
    }
    if (at < this.start || at + size > this.start + this.length) {
      this.start = at;
      this.length = readSync(this.fd, this.buffer, 0, WINDOW, at);
    }
    const from = at - this.start;
    return this.buffer.subarray(from, Math.min(from + size, this.length));
  }
}

/**
 * Walk an archive's headers from the start to its end-of-archive marker, checking every checksum
 * and that every member's data is there. The end is found this way, never assumed to be the last
 * 1024 bytes (GNU tar pads archives to 10 KiB records). A 0-byte file is an empty archive. Every
 * 20 ms it lets the event loop run (signals), and stops when `signal` is aborted.
 */
export async function scanArchive(file: string, options: ScanOptions): Promise<ArchiveScan> {
  const slice = new TimeSlice(options.signal);
  const fd = options.fd ?? openSync(file, "r");
  try {
    const fileSize = fstatSync(fd).size;
    const [from, to] = options.range ?? [0, Number.POSITIVE_INFINITY];
    const window = new Window(fd);
    let offset = from;
    let pending: { pax?: Map<string, Buffer>; longName?: string; longLink?: string; start?: number } = {};
    const readData = (at: number, size: number) => {
      const data = window.bytes(at, size);
      if (data.length !== size) throw new TarFormatError(file, at, "truncated extended header");
      return Buffer.from(data);
    };
    while (true) {
      if (slice.due()) await slice.pause();
      if (offset >= to && pending.start === undefined) return { end: offset, fileSize };
      if (offset === 0 && fileSize === 0) return { end: 0, fileSize };
      const block = window.bytes(offset, BLOCK);
      if (block.length !== BLOCK)
        throw new TarFormatError(file, offset, "archive ends without an end-of-archive marker");
      if (isZero(block)) {
        if (pending.start !== undefined)
          throw new TarFormatError(file, offset, "extended header without a member");
        return { end: offset, fileSize };
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
      const told = options.onMember({
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
      if (told) await told;
      pending = {};
      offset = dataOffset + round(dataSize);
    }
  } finally {
    if (options.fd === undefined) closeSync(fd);
  }
}
