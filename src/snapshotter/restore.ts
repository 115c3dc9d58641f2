import { lstatSync, mkdirSync } from "node:fs";
import path from "node:path";
import { ConfigError } from "../system/errors.js";
import { readMountinfo } from "../system/mountinfo.js";
import { TimeSlice } from "../system/signals.js";
import { collectGarbage } from "../system/young-gc.js";
import { type ByteString, bytesOf, displayName, fsPath } from "../tar/names.js";
import { type Member, type MemberType, scanArchive } from "../tar/reader.js";
import { type OpenArchive, readMemberText, readSpans, withArchive } from "./archive-file.js";
import { type ArchiveMap, addToSpans, currentCopy, type Span, type VolumeWatch } from "./archive-map.js";
import { ArchiveContentError } from "./errors.js";
import { directoryExtractor, extractFile } from "./extract.js";
import { emptyDirectory } from "./remove-tree.js";
import { memberPath, VolumeCheck } from "./volume-check.js";
import { INDEX_NAME, parseIndex, type VolumeRecord } from "./volume-index.js";

/**
 * Worker threads that write a directory volume's files, once it has enough of them to pay for the
 * thread's start (~50 ms): one, and the main thread writes a batch itself whenever the thread has
 * two waiting. Measured on 2 cores: as fast as two threads, and one isolate less (~10 MiB; a
 * million-file restore peaks at 98 MiB, 114 MiB with two).
 */
const THREADS = 1;
const THREADS_FROM_FILES = 1000;
const THREADS_FROM_BYTES = 64 * 1024 * 1024;
/** Files of at most this size get the data the scan read with them (no second read of it). */
const GIVEN_DATA = 64 * 1024;

export interface RestoreOptions {
  archive: string;
  prefix: string;
  /** Restore only these targets (config `volumes`); each must be in the archive's index. */
  only: readonly string[] | undefined;
  /** Where a target lives here (container mode: itself; host mode: the mount's source). */
  resolve: (target: string) => string;
  warn: (message: string) => void;
  onBytes?: (bytes: number) => void;
  /** Told the bytes of file data to restore, once the archive is checked. */
  onTotal?: (bytes: number) => void;
  /** Aborting stops between files (the volume being restored is then incomplete, and said so). */
  signal?: AbortSignal;
  /** Threads writing each directory volume's files (0: none); default: THREADS for big volumes. */
  threads?: number;
}

export interface RestoredVolume {
  target: string;
  type: "dir" | "file";
  path: string;
  entries: number;
}

/**
 * One volume of a copy of the restored prefix, as the scan that maps the archive sees its members
 * go past: checked (VolumeCheck), where its members are (spans), its first member. A failed check
 * is kept, not thrown: it matters only if this copy is the newest and the volume is restored.
 */
class CheckedVolume implements VolumeWatch {
  private check: VolumeCheck | undefined;
  readonly spans: Span[] = [];
  first: Member | undefined;
  error: Error | undefined;
  entries = 0;
  bytes = 0;

  constructor(
    private readonly archive: OpenArchive,
    private readonly root: ByteString,
  ) {
    this.check = new VolumeCheck(root, (paths, before) => this.typesBefore(paths, before));
  }

  add(member: Member): void | Promise<void> {
    if (!this.check || this.error) return;
    this.first ??= member;
    addToSpans(this.spans, member.headerOffset, member.endOffset);
    try {
      const checking = this.check.add(member);
      if (checking) return checking.catch((error: Error) => this.fail(error));
    } catch (error) {
      this.fail(error as Error);
    }
  }

  /** The copy is complete: its totals stay, the check's memory goes. */
  seal(): void {
    this.entries = this.check?.entries ?? 0;
    this.bytes = this.check?.bytes ?? 0;
    this.check = undefined;
  }

  private fail(error: Error): void {
    this.error ??= error;
  }

  /** The type each of these paths had last among this volume's members before `before` (exact). */
  private async typesBefore(
    paths: readonly ByteString[],
    before: number,
  ): Promise<Map<ByteString, MemberType>> {
    const wanted = new Set(paths);
    const types = new Map<ByteString, MemberType>();
    for (const span of this.spans) {
      if (span.start >= before) break;
      await scanArchive(this.archive.file, {
        fd: this.archive.fd,
        range: [span.start, Math.min(span.end, before)],
        onMember: (member) => {
          const relative = memberPath(member, this.root);
          if (wanted.has(relative)) types.set(relative, member.type);
        },
      });
    }
    return types;
  }
}

/**
 * Restore the newest copy of a prefix. Everything is checked before anything changes: the whole
 * archive (every header, every member's data present), the index, the selection, and every
 * member name. Then each volume is emptied and refilled (a directory) or rewritten in place (a file).
 */
export function restore(options: RestoreOptions): Promise<RestoredVolume[]> {
  const prefix = bytesOf(options.prefix);
  // The prefix's volumes are checked in the one scan that maps the archive.
  const watch = (archive: OpenArchive) => (copyPrefix: ByteString, id: string) =>
    copyPrefix === prefix ? new CheckedVolume(archive, `${prefix}/${id}`) : undefined;
  return withArchive(options.archive, { signal: options.signal, watch }, (archive, map) =>
    restoreFrom(archive, map, options),
  );
}

async function restoreFrom(
  archive: OpenArchive,
  map: ArchiveMap,
  options: RestoreOptions,
): Promise<RestoredVolume[]> {
  const prefix = bytesOf(options.prefix);
  const copy = currentCopy(map, prefix);
  if (!copy) {
    const known = [...new Set(map.copies.map((c) => displayName(c.prefix)))];
    throw new ConfigError(
      `prefix ${options.prefix} is not in ${options.archive}${known.length ? ` (it has: ${known.join(", ")})` : " (it holds no backup)"}`,
    );
  }
  const records = parseIndex(readMemberText(archive, copy.index), `${options.prefix}/${INDEX_NAME}`);
  let selected: VolumeRecord[] = records;
  if (options.only) {
    selected = options.only.map((target) => {
      const record = records.find((r) => r.target === path.resolve(target) || r.target === target);
      if (!record) {
        throw new ConfigError(
          `volume ${target} is not in the backup under ${options.prefix} (it has: ${records.map((r) => r.target).join(", ")})`,
        );
      }
      return record;
    });
  }
  if (!copy.volumes)
    throw new ArchiveContentError(
      `the backup under ${options.prefix} has more volumes than snapshotter writes`,
    );
  const plan = selected.map((record) => {
    const root = `${prefix}/${record.id}`;
    const checked = copy.volumes?.get(record.id) as CheckedVolume | undefined;
    const first = checked?.first;
    if (!checked || !first)
      throw new ArchiveContentError(`volume ${record.target}: no entries under ${displayName(root)}`);
    if (checked.error) throw checked.error;
    if (record.type === "file" && (checked.entries !== 1 || first.type !== "file")) {
      throw new ArchiveContentError(
        `volume ${record.target}: expected one regular file at ${displayName(root)}`,
      );
    }
    const { spans, bytes, entries } = checked;
    return {
      record,
      root,
      spans,
      first,
      bytes,
      entries,
      dest: bytesOf(path.resolve(options.resolve(record.target))),
    };
  });

  options.onTotal?.(plan.reduce((sum, p) => sum + p.bytes, 0));
  // The checks' tables (12 MiB at a million files) go before the writer threads come.
  collectGarbage();
  const mountPoints = new Set((await readMountinfo()).map((entry) => bytesOf(entry.mountPoint)));
  const restored: RestoredVolume[] = [];
  const extractOptions = {
    archiveFd: archive.fd,
    onBytes: options.onBytes ?? (() => {}),
    warn: options.warn,
    slice: new TimeSlice(options.signal),
  };
  // A volume inside another one is filled after the outer one was emptied and refilled.
  const ordered = [...plan].sort((a, b) => a.record.target.length - b.record.target.length);
  for (const { record, root, spans, first, dest, bytes, entries: count } of ordered) {
    if (record.type === "file") {
      await extractFile(first, dest, extractOptions);
      restored.push({ target: record.target, type: "file", path: displayName(dest), entries: 1 });
      continue;
    }
    const info = lstatSync(fsPath(dest), { throwIfNoEntry: false });
    if (info && !info.isDirectory())
      throw new ArchiveContentError(`${displayName(dest)} exists and is not a directory`);
    if (!info) mkdirSync(fsPath(dest), { recursive: true });
    emptyDirectory(dest, mountPoints, options.warn);
    const threads =
      options.threads ?? (count >= THREADS_FROM_FILES || bytes >= THREADS_FROM_BYTES ? THREADS : 0);
    // The volume's members are read again, one at a time: never all of them in memory.
    const extractor = directoryExtractor(root, dest, { ...extractOptions, threads, exactModes: true });
    // Files are created with their permission bits, not the umask's: one chmod less a file.
    const umask = process.umask(0);
    try {
      await readSpans(archive, spans, extractor.add, { withData: GIVEN_DATA });
      const entries = await extractor.finish();
      restored.push({ target: record.target, type: "dir", path: displayName(dest), entries });
    } catch (error) {
      options.warn(`volume ${record.target} is incomplete: its restore stopped part-way; run restore again`);
      throw error;
    } finally {
      await extractor.close();
      process.umask(umask);
    }
  }
  return restored;
}
