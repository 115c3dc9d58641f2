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
  /** Extended attributes (SCHILY.xattr records): name -> value. */
  xattrs: ReadonlyMap<string, Buffer>;
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
  onMember: (member: Member, data?: Buffer) => void | Promise<void>;
  /**
   * Regular files of at most this many bytes come with their data (`data`, a view valid only
   * during the call): what the scan reads anyway, so the caller need not read it again.
   */
  withData?: number;
  signal?: AbortSignal;
  /** Read through this descriptor of `file` (left open) instead of opening the file. */
  fd?: number;
  /** Scan only the members in [from, to): both member boundaries found by an earlier scan. */
  range?: readonly [number, number];
}

const WINDOW = 256 * 1024;
/** Extended headers (pax, GNU long names) larger than this are refused. */
const MAX_EXTENDED = 64 * 1024 * 1024;
const NO_XATTRS: ReadonlyMap<string, Buffer> = new Map();

const isSpace = (byte: number) => byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);

/** Octal (NUL/space terminated) or GNU base-256 numbers of a header field; NaN for anything else. */
function number(block: Buffer, offset: number, length: number): number {
  const end = offset + length;
  if ((block[offset] as number) & 0x80) {
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

/** A NUL-terminated field as a byte string. */
function field(block: Buffer, offset: number, length: number): string {
  let end = offset;
  const limit = offset + length;
  while (end < limit && block[end] !== 0) end++;
  return block.toString("latin1", offset, end);
}

/**
 * The header block at `at` of a window (4-byte aligned) against its checksum: the byte sum with the
 * checksum field read as spaces, as POSIX defines it, four bytes at a time (two 16-bit lanes of
 * byte sums, which 128 words cannot overflow).
 */
function checksumOk(block: Buffer, words: Uint32Array, at: number): boolean {
  const stored = number(block, at + 148, 8);
  let lanes = 0;
  const first = at >>> 2;
  for (let i = 0; i < BLOCK / 4; i++) {
    if (i === 37 || i === 38) continue; // bytes 148-155
    const word = words[first + i] as number;
    lanes += (word & 0xff00ff) + ((word >>> 8) & 0xff00ff);
  }
  return stored === 8 * 0x20 + (lanes & 0xffff) + (lanes >>> 16);
}

function isZero(words: Uint32Array, at: number): boolean {
  const first = at >>> 2;
  for (let i = 0; i < BLOCK / 4; i++) if (words[first + i] !== 0) return false;
  return true;
}

/** What pax records (and GNU long names) say about the next member. */
class Extended {
  start = -1;
  path: string | undefined;
  linkpath: string | undefined;
  size: number | undefined;
  uid: number | undefined;
  gid: number | undefined;
  mtime: { seconds: number; nanoseconds: number } | undefined;
  xattrs: Map<string, Buffer> | undefined;

  clear(): void {
    this.start = -1;
    this.path = this.linkpath = undefined;
    this.size = this.uid = this.gid = undefined;
    this.mtime = undefined;
    this.xattrs = undefined;
  }

  /** Pax records "<len> <key>=<value>\n" in data[from, to); false when malformed. */
  pax(data: Buffer, from: number, to: number): boolean {
    let offset = from;
    while (offset < to) {
      if (data[offset] === 0) break;
      let length = 0;
      let at = offset;
      for (; at < to && data[at] !== 0x20; at++) {
        const digit = (data[at] as number) - 0x30;
        if (digit < 0 || digit > 9) return false;
        length = length * 10 + digit;
      }
      const end = offset + length;
      if (at === offset || at >= to || length <= at - offset || end > to || data[end - 1] !== 0x0a)
        return false;
      const equals = data.indexOf(0x3d, at + 1);
      if (equals < 0 || equals >= end - 1) return false;
      this.record(data.toString("latin1", at + 1, equals), data, equals + 1, end - 1);
      offset = end;
    }
    return true;
  }

  private record(key: string, data: Buffer, from: number, to: number): void {
    switch (key) {
      case "path":
        this.path = data.toString("latin1", from, to);
        return;
      case "linkpath":
        this.linkpath = data.toString("latin1", from, to);
        return;
      case "size":
        this.size = Number(data.toString("latin1", from, to));
        return;
      case "uid":
        this.uid = Number(data.toString("latin1", from, to));
        return;
      case "gid":
        this.gid = Number(data.toString("latin1", from, to));
        return;
      case "mtime": {
        const [whole = "0", fraction = ""] = data.toString("latin1", from, to).split(".");
        this.mtime = { seconds: Number(whole), nanoseconds: Number(fraction.padEnd(9, "0").slice(0, 9)) };
        return;
      }
    }
    if (key.startsWith("SCHILY.xattr.")) {
      this.xattrs ??= new Map();
      // A copy: the window it was read from is reused.
      this.xattrs.set(key.slice(13), Buffer.from(data.subarray(from, to)));
    }
  }
}

/** An archive read through one window: one read serves the headers of many small members. */
class Window {
  readonly buffer = Buffer.allocUnsafe(WINDOW);
  readonly words = new Uint32Array(this.buffer.buffer, this.buffer.byteOffset, WINDOW / 4);
  private start = 0;
  private length = 0;

  constructor(private readonly fd: number) {}

  /**
   * Makes `size` (<= WINDOW) bytes at `at` readable in `buffer` and returns where they start there,
   * or -1 when the file ends before them.
   */
  load(at: number, size: number): number {
    if (at < this.start || at + size > this.start + this.length) {
      this.start = at;
      this.length = readSync(this.fd, this.buffer, 0, WINDOW, at);
    }
    return at + size <= this.start + this.length ? at - this.start : -1;
  }

  /** `size` bytes at `at`, in the window or (bigger than it) in a buffer of their own; undefined past the end. */
  bytes(at: number, size: number): { data: Buffer; from: number } | undefined {
    if (size <= WINDOW) {
      const from = this.load(at, size);
      return from < 0 ? undefined : { data: this.buffer, from };
    }
    const data = Buffer.allocUnsafe(size);
    return readSync(this.fd, data, 0, size, at) === size ? { data, from: 0 } : undefined;
  }
}

/** Members between time-slice checks (a check reads the clock). */
const SLICE_EVERY = 256;

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
    const { buffer: block, words } = window;
    const extended = new Extended();
    let offset = from;
    let count = 0;
    while (true) {
      if (++count === SLICE_EVERY) {
        count = 0;
        if (slice.due()) await slice.pause();
      }
      if (offset >= to && extended.start < 0) return { end: offset, fileSize };
      if (offset === 0 && fileSize === 0) return { end: 0, fileSize };
      const at = window.load(offset, BLOCK);
      if (at < 0) throw new TarFormatError(file, offset, "archive ends without an end-of-archive marker");
      if (isZero(words, at)) {
        if (extended.start >= 0) throw new TarFormatError(file, offset, "extended header without a member");
        return { end: offset, fileSize };
      }
      if (!checksumOk(block, words, at)) throw new TarFormatError(file, offset, "header checksum mismatch");
      const flag = block[at + 156] as number;
      const size = number(block, at + 124, 12);
      const dataOffset = offset + BLOCK;
      if (!(dataOffset + size <= fileSize))
        throw new TarFormatError(file, offset, `member data truncated (${size} bytes declared)`);
      const start = extended.start >= 0 ? extended.start : offset;
      // 'x' pax, 'g' pax global (applies to nothing we keep; also an append's skip marker), 'L'/'K' GNU.
      if (flag === 0x78 || flag === 0x67 || flag === 0x4c || flag === 0x4b) {
        if (size > MAX_EXTENDED) throw new TarFormatError(file, offset, "extended header too large");
        if (flag !== 0x67) {
          const data = window.bytes(dataOffset, size);
          if (!data) throw new TarFormatError(file, offset, "truncated extended header");
          extended.start = start;
          if (flag === 0x78) {
            if (!extended.pax(data.data, data.from, data.from + size))
              throw new TarFormatError(file, offset, "malformed pax record");
          } else if (flag === 0x4c) extended.path = field(data.data, data.from, size);
          else extended.linkpath = field(data.data, data.from, size);
        }
        offset = dataOffset + round(size);
        continue;
      }
      const type = typeOf(flag);
      let name = extended.path;
      if (name === undefined) {
        const base = field(block, at, 100);
        // "ustar": a POSIX header, whose prefix field (155 bytes) holds the start of a long name.
        const ustar =
          block[at + 257] === 0x75 &&
          block[at + 258] === 0x73 &&
          block[at + 259] === 0x74 &&
          block[at + 260] === 0x61 &&
          block[at + 261] === 0x72;
        const prefix = ustar ? field(block, at + 345, 155) : "";
        name = prefix === "" ? base : `${prefix}/${base}`;
      }
      const realSize = extended.size ?? size;
      const dataSize =
        type === "file" ? realSize : flag === 0x31 || flag === 0x32 || flag === 0x35 ? 0 : realSize;
      if (!(dataOffset + dataSize <= fileSize))
        throw new TarFormatError(file, offset, `member data truncated (${dataSize} bytes declared)`);
      const member: Member = {
        name,
        type,
        typeflag: String.fromCharCode(flag),
        headerOffset: start,
        dataOffset,
        size: dataSize,
        endOffset: dataOffset + round(dataSize),
        mode: number(block, at + 100, 8) & 0o7777,
        uid: extended.uid ?? number(block, at + 108, 8),
        gid: extended.gid ?? number(block, at + 116, 8),
        mtime: extended.mtime ?? { seconds: number(block, at + 136, 12), nanoseconds: 0 },
        linkname: extended.linkpath ?? field(block, at + 157, 100),
        devmajor: type === "char" || type === "block" ? number(block, at + 329, 8) : 0,
        devminor: type === "char" || type === "block" ? number(block, at + 337, 8) : 0,
        xattrs: extended.xattrs ?? NO_XATTRS,
      };
      if (extended.start >= 0) extended.clear();
      offset = member.endOffset;
      let data: Buffer | undefined;
      if (options.withData !== undefined && type === "file" && dataSize <= options.withData) {
        const from = window.load(dataOffset, dataSize);
        if (from >= 0) data = block.subarray(from, from + dataSize);
      }
      const told = options.onMember(member, data);
      if (told) await told;
    }
  } finally {
    if (options.fd === undefined) closeSync(fd);
  }
}

function typeOf(flag: number): MemberType {
  switch (flag) {
    case 0x30:
    case 0x00:
    case 0x37:
      return "file";
    case 0x31:
      return "hardlink";
    case 0x32:
      return "symlink";
    case 0x33:
      return "char";
    case 0x34:
      return "block";
    case 0x35:
      return "dir";
    case 0x36:
      return "fifo";
    default:
      return "other";
  }
}

const round = (size: number) => Math.ceil(size / BLOCK) * BLOCK;
