import { stat } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../system/atomic-write.js";
import { ConfigError, isErrno } from "../system/errors.js";
import { withLock } from "../system/lock.js";
import { appendToArchive } from "../tar/append.js";
import { ArchiveWriter, type WriteItem } from "../tar/archive-writer.js";
import { END_OF_ARCHIVE, type TarEntry } from "../tar/header.js";
import type { Member } from "../tar/reader.js";
import { walkTree } from "../tar/tree.js";
import { isMountPoint, openArchive } from "./archive-file.js";
import { type ArchiveMap, cleanName } from "./archive-map.js";
import { copyRanges, keptRanges } from "./ranges.js";
import { INDEX_NAME, renderIndex, type VolumeRecord, volumeId } from "./volume-index.js";

/** A volume to save: its path inside the container (recorded) and where to read it here. */
export interface VolumeSource {
  target: string;
  path: string;
}

export interface BackupOptions {
  archive: string;
  prefix: string;
  volumes: readonly VolumeSource[];
  /** Keep an existing copy of the prefix and add another (restore uses the newest). */
  appendOnly: boolean;
  warn: (message: string) => void;
  /** Called with every chunk's size as the archive is written. */
  onBytes?: (bytes: number) => void;
}

export type BackupOutcome =
  | { kind: "appended"; volumes: VolumeRecord[] }
  | { kind: "replaced"; volumes: VolumeRecord[] }
  /** The archive could not be replaced (a bind-mounted file): a new copy was appended instead. */
  | { kind: "superseded"; volumes: VolumeRecord[] };

async function describeVolumes(volumes: readonly VolumeSource[]): Promise<VolumeRecord[]> {
  const records: VolumeRecord[] = [];
  for (const volume of volumes) {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(volume.path);
    } catch (error) {
      if (isErrno(error, "ENOENT"))
        throw new ConfigError(`volume ${volume.target}: ${volume.path} does not exist`);
      throw error;
    }
    if (!info.isDirectory() && !info.isFile()) {
      throw new ConfigError(
        `volume ${volume.target}: ${volume.path} is neither a directory nor a regular file`,
      );
    }
    records.push({
      id: volumeId(volume.target),
      type: info.isDirectory() ? "dir" : "file",
      target: volume.target,
    });
  }
  return records;
}

/** The new copy's items: every volume under `<prefix>/<id>` (its tree walked), then the index. */
async function copyItems(
  options: BackupOptions,
  records: readonly VolumeRecord[],
): Promise<Array<Iterable<WriteItem>>> {
  const paths = new Set(options.volumes.map((volume) => path.resolve(volume.path)));
  const parts: Array<Iterable<WriteItem>> = [];
  for (const [index, record] of records.entries()) {
    const source = options.volumes[index] as VolumeSource;
    const root = path.resolve(source.path);
    // Another selected volume mounted inside this one is saved as its own volume, not twice.
    const skip = new Set([...paths].filter((other) => other.startsWith(`${root}/`)));
    const name = `${options.prefix}/${record.id}`;
    parts.push(await walkTree(source.path, { prefix: name, includeRoot: true, warn: options.warn, skip }));
  }
  const index = Buffer.from(renderIndex(records));
  const entry: TarEntry = {
    name: `${options.prefix}/${INDEX_NAME}`,
    type: "file",
    mode: 0o600,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    size: index.length,
    mtime: { seconds: Math.floor(Date.now() / 1000), nanoseconds: 0 },
  };
  parts.push([{ entry, content: index }]);
  return parts;
}

/** Every member of this prefix: its complete copies and an interrupted one's leftovers. */
export function prefixMembers(map: ArchiveMap, prefix: string): Set<Member> {
  const drop = new Set<Member>();
  for (const copy of map.copies.filter((c) => c.prefix === prefix))
    for (const m of [...copy.members, copy.index]) drop.add(m);
  for (const member of map.incomplete) if (cleanName(member.name).startsWith(`${prefix}/`)) drop.add(member);
  return drop;
}

/**
 * Save the volumes under the prefix. A new prefix is appended (crash-safe, see appendToArchive);
 * an existing one is replaced by rewriting the archive beside itself and renaming it over (the old
 * archive stays intact until the rename). A bind-mounted archive cannot be renamed over: then the
 * new copy is appended and supersedes the old one.
 */
export async function backup(options: BackupOptions): Promise<BackupOutcome> {
  const records = await describeVolumes(options.volumes);
  // Two writers of one archive would interleave their members: `<archive>.lock` serialises them.
  return withLock(options.archive, () => write(options, records), { timeoutMs: 10 * 60_000, staleMs: 3_000 });
}

async function write(options: BackupOptions, records: VolumeRecord[]): Promise<BackupOutcome> {
  const { scan, map } = await openArchive(options.archive, { create: true });
  const existing = prefixMembers(map, options.prefix);
  const items = await copyItems(options, records);
  const addCopy = (writer: ArchiveWriter) => {
    for (const part of items) for (const item of part) writer.add(item);
  };
  const append = () => appendToArchive(options.archive, scan.end, addCopy, options.onBytes);

  if (existing.size === 0 || options.appendOnly) {
    append();
    return { kind: "appended", volumes: records };
  }
  if (await isMountPoint(options.archive)) {
    append();
    return { kind: "superseded", volumes: records };
  }
  const ranges = keptRanges(scan.members, existing);
  const rewrite = (fd: number) => {
    const writer = new ArchiveWriter(fd, 0, options.onBytes);
    copyRanges(writer, options.archive, ranges);
    addCopy(writer);
    writer.write(END_OF_ARCHIVE);
    writer.finish();
  };
  try {
    await writeFileAtomic(options.archive, rewrite, { keepOwnership: true });
  } catch (error) {
    if (!isErrno(error, "EBUSY")) throw error;
    append();
    return { kind: "superseded", volumes: records };
  }
  return { kind: "replaced", volumes: records };
}
