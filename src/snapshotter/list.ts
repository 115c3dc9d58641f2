import { bytesOf, displayName } from "../tar/names.js";
import type { Member } from "../tar/reader.js";
import { type OpenArchive, readMemberText, readSpans, withArchive } from "./archive-file.js";
import {
  type ArchiveMap,
  type Copy,
  cleanName,
  entriesIn,
  type VolumeWatch,
  volumeIdOf,
} from "./archive-map.js";
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
  const wanted = prefix === undefined ? undefined : bytesOf(prefix);
  // Entries and bytes per volume are counted in the scan that maps the archive.
  const watch = () => (copyPrefix: string) =>
    wanted === undefined || copyPrefix === wanted ? new VolumeTotals() : undefined;
  return withArchive(archive, { watch }, (open, map) => listCopies(open, map, wanted));
}

/** A volume's entries and bytes of file data. */
class VolumeTotals implements VolumeWatch {
  entries = 0;
  bytes = 0;

  add(member: Member): void {
    this.entries++;
    if (member.type === "file") this.bytes += member.size;
  }
}

/** The totals of a copy's volumes: from its scan, or (a copy with too many volumes to watch) counted now. */
async function totalsOf(archive: OpenArchive, copy: Copy): Promise<ReadonlyMap<string, VolumeWatch>> {
  if (copy.volumes) return copy.volumes;
  const totals = new Map<string, VolumeTotals>();
  await readSpans(archive, copy.spans, (member) => {
    const id = volumeIdOf(cleanName(member.name), copy.prefix);
    if (id === undefined) return;
    const total = totals.get(id) ?? new VolumeTotals();
    totals.set(id, total);
    total.add(member);
  });
  return totals;
}

async function listCopies(
  archive: OpenArchive,
  map: ArchiveMap,
  wanted: string | undefined,
): Promise<{ copies: ListedCopy[]; incompleteEntries: number; otherEntries: number }> {
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
      const totals = (await totalsOf(archive, copy)) as ReadonlyMap<string, VolumeTotals>;
      for (const record of records) {
        const total = totals.get(record.id);
        listed.volumes.push({ ...record, entries: total?.entries ?? 0, bytes: total?.bytes ?? 0 });
      }
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
