import { lstatSync, mkdirSync } from "node:fs";
import path from "node:path";
import { ConfigError } from "../system/errors.js";
import { readMountinfo } from "../system/mountinfo.js";
import { TimeSlice } from "../system/signals.js";
import { type ByteString, bytesOf, displayName, fsPath } from "../tar/names.js";
import type { Member } from "../tar/reader.js";
import { type OpenArchive, readMemberText, readSpans, withArchive } from "./archive-file.js";
import {
  type ArchiveMap,
  addToSpans,
  type Copy,
  cleanName,
  currentCopy,
  type Span,
  volumeIdOf,
} from "./archive-map.js";
import { ArchiveContentError } from "./errors.js";
import { directoryExtractor, emptyDirectory, extractFile, VolumeCheck } from "./extract.js";
import { INDEX_NAME, parseIndex, type VolumeRecord } from "./volume-index.js";

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
}

export interface RestoredVolume {
  target: string;
  type: "dir" | "file";
  path: string;
  entries: number;
}

/** What the check pass learnt of one volume: its checker, where its members are, its first one. */
interface CheckedVolume {
  check: VolumeCheck;
  spans: Span[];
  first?: Member;
}

/**
 * Check the members of each of these volume roots (`<prefix>/<id>`) as the copy's spans stream
 * past, and note the byte ranges that hold each volume's members, for the extraction pass.
 */
async function checkVolumes(
  archive: OpenArchive,
  copy: Copy,
  roots: readonly ByteString[],
  signal?: AbortSignal,
): Promise<Map<ByteString, CheckedVolume>> {
  const volumes = new Map(
    roots.map((root) => [root, { check: new VolumeCheck(root), spans: [] } as CheckedVolume]),
  );
  await readSpans(
    archive,
    copy.spans,
    (member) => {
      const id = volumeIdOf(cleanName(member.name), copy.prefix);
      const volume = id === undefined ? undefined : volumes.get(`${copy.prefix}/${id}`);
      if (!volume) return;
      volume.check.add(member);
      volume.first ??= member;
      addToSpans(volume.spans, member.headerOffset, member.endOffset);
    },
    signal,
  );
  return volumes;
}

/**
 * Restore the newest copy of a prefix. Everything is checked before anything changes: the whole
 * archive (every header, every member's data present), the index, the selection, and every
 * member name. Then each volume is emptied and refilled (a directory) or rewritten in place (a file).
 */
export function restore(options: RestoreOptions): Promise<RestoredVolume[]> {
  return withArchive(options.archive, options.signal, (archive, map) => restoreFrom(archive, map, options));
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
  const checked = await checkVolumes(
    archive,
    copy,
    selected.map((record) => `${prefix}/${record.id}`),
    options.signal,
  );
  const plan = selected.map((record) => {
    const root = `${prefix}/${record.id}`;
    const { check, spans, first } = checked.get(root) as CheckedVolume;
    if (!first)
      throw new ArchiveContentError(`volume ${record.target}: no entries under ${displayName(root)}`);
    if (record.type === "file" && (check.entries !== 1 || first.type !== "file")) {
      throw new ArchiveContentError(
        `volume ${record.target}: expected one regular file at ${displayName(root)}`,
      );
    }
    return { record, root, check, spans, first, dest: bytesOf(path.resolve(options.resolve(record.target))) };
  });

  options.onTotal?.(plan.reduce((sum, p) => sum + p.check.bytes, 0));
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
  for (const { record, root, spans, first, dest } of ordered) {
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
    // The volume's members are read again, one at a time: never all of them in memory.
    const extractor = directoryExtractor(root, dest, extractOptions);
    await readSpans(archive, spans, extractor.add);
    const entries = await extractor.finish();
    restored.push({ target: record.target, type: "dir", path: displayName(dest), entries });
  }
  return restored;
}
