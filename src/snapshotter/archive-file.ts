import { closeSync, openSync, readSync } from "node:fs";
import { stat, writeFile } from "node:fs/promises";
import { ConfigError, isErrno } from "../system/errors.js";
import { END_OF_ARCHIVE } from "../tar/header.js";
import { type ArchiveScan, type Member, scanArchive } from "../tar/reader.js";
import {
  type ArchiveMap,
  ArchiveMapper,
  type MemberData,
  type Span,
  type WatchVolume,
} from "./archive-map.js";
import { ArchiveContentError } from "./errors.js";

const MISSING_HINT =
  "create it first with 'snapshotter init FILE' or 'dd if=/dev/zero of=FILE bs=512 count=2' (docker run -v makes a directory when the file is missing on the host)";

/** `snapshotter init`: a new empty archive, 1,024 zero bytes, refusing to overwrite anything. */
export async function initArchive(file: string): Promise<void> {
  try {
    await writeFile(file, END_OF_ARCHIVE, { flag: "wx", mode: 0o600 });
  } catch (error) {
    if (isErrno(error, "EEXIST")) throw new ConfigError(`${file} already exists; not overwriting it`);
    throw error;
  }
}

/** An archive opened once: every later read goes through `fd`, whatever replaces the file meanwhile. */
export interface OpenArchive {
  file: string;
  fd: number;
}

async function checkArchiveFile(file: string, create: boolean): Promise<void> {
  try {
    const info = await stat(file);
    if (info.isDirectory())
      throw new ConfigError(`archive ${file} is a directory, not a tar file: ${MISSING_HINT}`);
  } catch (error) {
    if (!isErrno(error, "ENOENT")) throw error;
    if (!create) throw new ConfigError(`archive ${file} does not exist`);
    await initArchive(file);
  }
}

async function mapOpenArchive(
  archive: OpenArchive,
  signal?: AbortSignal,
  watch?: WatchVolume,
): Promise<{ scan: ArchiveScan; map: ArchiveMap }> {
  const mapper = new ArchiveMapper(watch);
  const scan = await scanArchive(archive.file, {
    fd: archive.fd,
    onMember: (member) => mapper.add(member),
    ...(signal ? { signal } : {}),
  });
  return { scan, map: mapper.finish() };
}

/** Scan an archive (every header checked) and map its prefixes. `create` makes a missing one. */
export async function openArchive(
  file: string,
  options: { create: boolean; signal?: AbortSignal },
): Promise<{ scan: ArchiveScan; map: ArchiveMap }> {
  await checkArchiveFile(file, options.create);
  const fd = openSync(file, "r");
  try {
    return await mapOpenArchive({ file, fd }, options.signal);
  } finally {
    closeSync(fd);
  }
}

/**
 * Scan and map an existing archive, then run `work` with it still open: everything `work` reads
 * (readSpans, readMemberText, member data) comes from the file that was scanned, even when another
 * backup or a compact renames a new archive over it meanwhile. The volumes `watch` (made for the
 * open archive) picks are watched in the same scan: one pass over the headers (Copy.volumes).
 */
export async function withArchive<T>(
  file: string,
  options: { signal?: AbortSignal | undefined; watch?: (archive: OpenArchive) => WatchVolume },
  work: (archive: OpenArchive, map: ArchiveMap) => Promise<T>,
): Promise<T> {
  await checkArchiveFile(file, false);
  const archive = { file, fd: openSync(file, "r") };
  try {
    const { map } = await mapOpenArchive(archive, options.signal, options.watch?.(archive));
    return await work(archive, map);
  } finally {
    closeSync(archive.fd);
  }
}

/** The members of these spans (found by openArchive), each told to `onMember` in archive order. */
export async function readSpans(
  archive: OpenArchive,
  spans: readonly Span[],
  onMember: (member: Member, data?: Buffer) => void | Promise<void>,
  options: { signal?: AbortSignal; withData?: number } = {},
): Promise<void> {
  for (const span of spans)
    await scanArchive(archive.file, { ...options, fd: archive.fd, onMember, range: [span.start, span.end] });
}

/** A small member's content as text (an index file). */
export function readMemberText(archive: OpenArchive, member: MemberData): string {
  const data = Buffer.alloc(member.size);
  if (readSync(archive.fd, data, 0, member.size, member.dataOffset) !== member.size)
    throw new ArchiveContentError(`${archive.file} ended inside the index at byte ${member.dataOffset}`);
  return data.toString("utf8");
}
