import { stat } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../system/atomic-write.js";
import { ConfigError, isErrno } from "../system/errors.js";
import { type HeldLock, withLock } from "../system/lock.js";
import { isMountPoint } from "../system/mountinfo.js";
import { TimeSlice } from "../system/signals.js";
import { appendToArchive } from "../tar/append.js";
import { TreeArchiver } from "../tar/archive-tree.js";
import { type ArchiveWriter, writeArchive } from "../tar/archive-writer.js";
import type { TarEntry } from "../tar/header.js";
import { type ByteString, bytesOf } from "../tar/names.js";
import { type ArchiveItem, LiveChanges, walkTree } from "../tar/tree.js";
import { openArchive } from "./archive-file.js";
import { prefixSpans } from "./archive-map.js";
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
  /** Aborting stops the backup at a safe point: nothing of the new copy becomes visible. */
  signal?: AbortSignal;
  /** How long to wait for another writer of the archive (default 10 minutes). */
  lockTimeoutMs?: number;
  /** Read regular files ahead in a worker thread (faster with a free core; ~18 MiB more). */
  readerThread?: boolean;
}

export interface BackupOutcome {
  /** appended: a new prefix (or --append-only); replaced: the old copy rewritten away;
   * superseded: the archive could not be replaced (a bind-mounted file), a new copy was appended. */
  kind: "appended" | "replaced" | "superseded";
  volumes: VolumeRecord[];
  /** Files that vanished, shrank, grew or changed while they were read (each was warned about). */
  changedFiles: number;
}

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

/** The index member that closes a copy (written last, as the original does). */
function indexItem(prefix: ByteString, records: readonly VolumeRecord[]): ArchiveItem {
  const index = Buffer.from(renderIndex(records));
  const entry: TarEntry = {
    name: `${prefix}/${INDEX_NAME}`,
    type: "file",
    mode: 0o600,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    size: index.length,
    mtime: { seconds: Math.floor(Date.now() / 1000), nanoseconds: 0 },
  };
  return { entry, content: index };
}

/**
 * Save the volumes under the prefix. A new prefix is appended (crash-safe, see appendToArchive);
 * an existing one is replaced by rewriting the archive beside itself and renaming it over (the old
 * archive stays intact until the rename). A bind-mounted archive cannot be renamed over: then the
 * new copy is appended and supersedes the old one.
 *
 * Two writers of one archive would lose one's members: each holds a kernel lock on the archive
 * file itself (the same inode however it is mounted, so two containers sharing it wait for each
 * other too). The other waits up to `lockTimeoutMs`, then fails as busy.
 */
export async function backup(options: BackupOptions): Promise<BackupOutcome> {
  const records = await describeVolumes(options.volumes);
  return withLock(options.archive, (lock) => write(options, records, lock), {
    timeoutMs: options.lockTimeoutMs ?? 10 * 60_000,
    onWait: (holder) => options.warn(`${options.archive} is being written by ${holder}; waiting for it`),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

async function write(
  options: BackupOptions,
  records: VolumeRecord[],
  lock: HeldLock,
): Promise<BackupOutcome> {
  const { scan, map } = await openArchive(options.archive, {
    create: true,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const prefix = bytesOf(options.prefix);
  const existing = prefixSpans(map, prefix);
  const changes = new LiveChanges(options.warn);
  const paths = new Set(options.volumes.map((volume) => bytesOf(path.resolve(volume.path))));
  const addCopy = async (writer: ArchiveWriter) => {
    const archiver = new TreeArchiver(writer, changes, options.readerThread ?? false);
    for (const [index, record] of records.entries()) {
      const root = bytesOf(path.resolve((options.volumes[index] as VolumeSource).path));
      // Another selected volume mounted inside this one is saved as its own volume, not twice.
      const skip = new Set([...paths].filter((other) => other.startsWith(`${root}/`)));
      const name = `${prefix}/${record.id}`;
      await archiver.addAll(
        walkTree(root, { prefix: name, includeRoot: true, warn: options.warn, skip, changes }),
      );
    }
    await archiver.add([indexItem(prefix, records)]);
  };
  const writerOptions = {
    ...(options.onBytes ? { onBytes: options.onBytes } : {}),
    slice: new TimeSlice(options.signal),
    beforeCommit: () => lock.check(),
  };
  const append = () => appendToArchive(options.archive, scan.end, addCopy, writerOptions);
  const outcome = (kind: BackupOutcome["kind"]): BackupOutcome => ({
    kind,
    volumes: records,
    changedFiles: changes.count,
  });

  if (existing.size === 0 || options.appendOnly) {
    await append();
    return outcome("appended");
  }
  if (await isMountPoint(options.archive)) {
    await append();
    return outcome("superseded");
  }
  const ranges = keptRanges(map.spans, existing);
  const rewrite = async (fd: number) => {
    await writeArchive(fd, 0, writerOptions, async (writer) => {
      await copyRanges(writer, options.archive, ranges);
      await addCopy(writer);
    });
  };
  try {
    await writeFileAtomic(options.archive, rewrite, {
      keepOwnership: true,
      beforeCommit: writerOptions.beforeCommit,
    });
  } catch (error) {
    if (!isErrno(error, "EBUSY")) throw error;
    changes.count = 0;
    await append();
    return outcome("superseded");
  }
  return outcome("replaced");
}
