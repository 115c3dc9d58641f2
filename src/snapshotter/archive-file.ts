import { closeSync, openSync, readSync } from "node:fs";
import { stat, writeFile } from "node:fs/promises";
import { ConfigError, isErrno } from "../system/errors.js";
import { END_OF_ARCHIVE } from "../tar/header.js";
import { type ArchiveScan, type Member, scanArchive } from "../tar/reader.js";
import { type ArchiveMap, ArchiveMapper, type MemberData, type Span } from "./archive-map.js";

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

/** Scan an archive (every header checked) and map its prefixes. `create` makes a missing one. */
export async function openArchive(
  file: string,
  options: { create: boolean; signal?: AbortSignal },
): Promise<{ scan: ArchiveScan; map: ArchiveMap }> {
  try {
    const info = await stat(file);
    if (info.isDirectory())
      throw new ConfigError(`archive ${file} is a directory, not a tar file: ${MISSING_HINT}`);
  } catch (error) {
    if (!isErrno(error, "ENOENT")) throw error;
    if (!options.create) throw new ConfigError(`archive ${file} does not exist`);
    await initArchive(file);
  }
  const mapper = new ArchiveMapper();
  const scan = await scanArchive(file, {
    onMember: (member) => mapper.add(member),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return { scan, map: mapper.finish() };
}

/** The members of these spans (found by openArchive), each told to `onMember` in archive order. */
export async function readSpans(
  file: string,
  spans: readonly Span[],
  onMember: (member: Member) => void,
  signal?: AbortSignal,
): Promise<void> {
  for (const span of spans)
    await scanArchive(file, { onMember, range: [span.start, span.end], ...(signal ? { signal } : {}) });
}

/** A small member's content as text (an index file). */
export function readMemberText(archive: string, member: MemberData): string {
  const fd = openSync(archive, "r");
  try {
    const data = Buffer.alloc(member.size);
    readSync(fd, data, 0, member.size, member.dataOffset);
    return data.toString("utf8");
  } finally {
    closeSync(fd);
  }
}
