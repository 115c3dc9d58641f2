import { closeSync, lstatSync, mkdirSync, openSync } from "node:fs";
import path from "node:path";
import { ConfigError } from "../system/errors.js";
import { readMountinfo } from "../system/mountinfo.js";
import { TimeSlice } from "../system/signals.js";
import { type ByteString, bytesOf, displayName, fsPath } from "../tar/names.js";
import type { Member } from "../tar/reader.js";
import { openArchive, readMemberText, readSpans } from "./archive-file.js";
import { type Copy, cleanName, currentCopy } from "./archive-map.js";
import { checkVolumeMembers, emptyDirectory, extractDirectory, extractFile } from "./extract.js";
import { ArchiveContentError, INDEX_NAME, parseIndex, type VolumeRecord } from "./volume-index.js";

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

/** The members of each of these volume roots (`<prefix>/<id>`), read from the copy's spans. */
async function volumeMembers(
  archive: string,
  copy: Copy,
  roots: readonly ByteString[],
  signal?: AbortSignal,
): Promise<Map<ByteString, Member[]>> {
  const members = new Map(roots.map((root) => [root, [] as Member[]]));
  await readSpans(
    archive,
    copy.spans,
    (member) => {
      const name = cleanName(member.name);
      const root = name.slice(0, copy.prefix.length + 65);
      if (name.length === root.length || name[root.length] === "/") members.get(root)?.push(member);
    },
    signal,
  );
  return members;
}

/**
 * Restore the newest copy of a prefix. Everything is checked before anything changes: the whole
 * archive (every header, every member's data present), the index, the selection, and every
 * member name. Then each volume is emptied and refilled (a directory) or rewritten in place (a file).
 */
export async function restore(options: RestoreOptions): Promise<RestoredVolume[]> {
  const { map } = await openArchive(options.archive, {
    create: false,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const prefix = bytesOf(options.prefix);
  const copy = currentCopy(map, prefix);
  if (!copy) {
    const known = [...new Set(map.copies.map((c) => displayName(c.prefix)))];
    throw new ConfigError(
      `prefix ${options.prefix} is not in ${options.archive}${known.length ? ` (it has: ${known.join(", ")})` : " (it holds no backup)"}`,
    );
  }
  const records = parseIndex(readMemberText(options.archive, copy.index), `${options.prefix}/${INDEX_NAME}`);
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
  const byRoot = await volumeMembers(
    options.archive,
    copy,
    selected.map((record) => `${prefix}/${record.id}`),
    options.signal,
  );
  const plan = selected.map((record) => {
    const root = `${prefix}/${record.id}`;
    const members = byRoot.get(root) ?? [];
    if (members.length === 0)
      throw new ArchiveContentError(`volume ${record.target}: no entries under ${displayName(root)}`);
    if (record.type === "file" && (members.length !== 1 || members[0]?.type !== "file")) {
      throw new ArchiveContentError(
        `volume ${record.target}: expected one regular file at ${displayName(root)}`,
      );
    }
    if (record.type === "dir") checkVolumeMembers(members, root);
    return { record, root, members, dest: bytesOf(path.resolve(options.resolve(record.target))) };
  });

  options.onTotal?.(
    plan.reduce((sum, p) => sum + p.members.reduce((n, m) => n + (m.type === "file" ? m.size : 0), 0), 0),
  );
  const mountPoints = new Set((await readMountinfo()).map((entry) => bytesOf(entry.mountPoint)));
  const fd = openSync(options.archive, "r");
  const restored: RestoredVolume[] = [];
  try {
    const extractOptions = {
      archiveFd: fd,
      onBytes: options.onBytes ?? (() => {}),
      warn: options.warn,
      slice: new TimeSlice(options.signal),
    };
    // A volume inside another one is filled after the outer one was emptied and refilled.
    const ordered = [...plan].sort((a, b) => a.record.target.length - b.record.target.length);
    for (const { record, root, members, dest } of ordered) {
      if (record.type === "file") {
        await extractFile(members[0] as Member, dest, extractOptions);
        restored.push({ target: record.target, type: "file", path: displayName(dest), entries: 1 });
        continue;
      }
      const info = lstatSync(fsPath(dest), { throwIfNoEntry: false });
      if (info && !info.isDirectory())
        throw new ArchiveContentError(`${displayName(dest)} exists and is not a directory`);
      if (!info) mkdirSync(fsPath(dest), { recursive: true });
      emptyDirectory(dest, mountPoints, options.warn);
      const entries = await extractDirectory(members, root, dest, extractOptions);
      restored.push({ target: record.target, type: "dir", path: displayName(dest), entries });
    }
  } finally {
    closeSync(fd);
  }
  return restored;
}
