import { bytesOf, displayName } from "../tar/names.js";
import { type OpenArchive, readMemberText, readSpans, withArchive } from "./archive-file.js";
import { type ArchiveMap, cleanName, entriesIn, volumeIdOf } from "./archive-map.js";
import { humanSize } from "./human-size.js";
import { INDEX_NAME, parseIndex } from "./volume-index.js";

export interface ListedVolume {
  id: string;
  type: "dir" | "file";
  target: string;
  entries: number;
  /** Bytes of file data. */
  bytes: number;
}

export interface ListedCopy {
  prefix: string;
  /** Superseded copies are ignored by restore and dropped by `snapshotter compact`. */
  state: "current" | "superseded";
  volumes: ListedVolume[];
  /** Problem reading this copy's index, if any. */
  error?: string;
}

/** `snapshotter list`: every copy of every prefix (or one prefix), with its volumes and sizes. */
export async function listArchive(
  archive: string,
  prefix: string | undefined,
): Promise<{ copies: ListedCopy[]; incompleteEntries: number; otherEntries: number }> {
  return withArchive(archive, undefined, (open, map) => listCopies(open, map, prefix));
}

async function listCopies(
  archive: OpenArchive,
  map: ArchiveMap,
  prefix: string | undefined,
): Promise<{ copies: ListedCopy[]; incompleteEntries: number; otherEntries: number }> {
  const wanted = prefix === undefined ? undefined : bytesOf(prefix);
  const copies: ListedCopy[] = [];
  for (const copy of map.copies) {
    if (wanted !== undefined && copy.prefix !== wanted) continue;
    const listed: ListedCopy = {
      prefix: displayName(copy.prefix),
      state: copy.superseded ? "superseded" : "current",
      volumes: [],
    };
    try {
      const records = parseIndex(
        readMemberText(archive, copy.index),
        `${displayName(copy.prefix)}/${INDEX_NAME}`,
      );
      // Counted while the copy's members stream past: nothing per member is kept.
      const totals = new Map(records.map((record) => [record.id, { entries: 0, bytes: 0 }]));
      await readSpans(archive, copy.spans, (member) => {
        const id = volumeIdOf(cleanName(member.name), copy.prefix);
        const total = id === undefined ? undefined : totals.get(id);
        if (!total) return;
        total.entries++;
        if (member.type === "file") total.bytes += member.size;
      });
      for (const record of records)
        listed.volumes.push({ ...record, ...totals.get(record.id) } as ListedVolume);
    } catch (error) {
      listed.error = (error as Error).message;
    }
    copies.push(listed);
  }
  return {
    copies,
    incompleteEntries: entriesIn([...map.incomplete.values()].flat()),
    otherEntries: entriesIn(map.foreign),
  };
}

export function formatListing(listing: Awaited<ReturnType<typeof listArchive>>): string {
  const lines: string[] = [];
  for (const copy of listing.copies) {
    const total = copy.volumes.reduce((sum, v) => sum + v.bytes, 0);
    const note =
      copy.state === "superseded"
        ? "  (superseded: restore uses a newer copy; 'snapshotter compact' drops it)"
        : "";
    lines.push(`${copy.prefix}  ${copy.volumes.length} volume(s), ${humanSize(total)}${note}`);
    if (copy.error) lines.push(`  ! ${copy.error}`);
    for (const volume of copy.volumes) {
      lines.push(
        `  ${volume.type.padEnd(4)} ${volume.target}  ${volume.entries} entr${volume.entries === 1 ? "y" : "ies"}, ${humanSize(volume.bytes)}  [${volume.id.slice(0, 12)}]`,
      );
    }
  }
  if (listing.incompleteEntries > 0)
    lines.push(`${listing.incompleteEntries} entries of an interrupted backup (ignored)`);
  if (listing.otherEntries > 0) lines.push(`${listing.otherEntries} other entries (not snapshotter's; kept)`);
  if (lines.length === 0) lines.push("(no backups in this archive)");
  return lines.join("\n");
}
