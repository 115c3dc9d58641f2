import { closeSync, openSync } from "node:fs";
import type { ArchiveWriter } from "../tar/archive-writer.js";
import type { Member } from "../tar/reader.js";
import { ArchiveContentError } from "./volume-index.js";

/** Byte ranges of an archive that hold the members not dropped, adjacent members merged. */
export function keptRanges(members: readonly Member[], drop: ReadonlySet<Member>): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (const member of members) {
    if (drop.has(member)) continue;
    const last = ranges.at(-1);
    if (last && last[1] === member.headerOffset) last[1] = member.endOffset;
    else ranges.push([member.headerOffset, member.endOffset]);
  }
  return ranges;
}

/** Copy those ranges of the archive, as they are (headers, data and padding untouched). */
export async function copyRanges(
  writer: ArchiveWriter,
  archive: string,
  ranges: ReadonlyArray<[number, number]>,
): Promise<void> {
  const fd = openSync(archive, "r");
  try {
    for (const [start, end] of ranges) {
      const copied = await writer.copyFrom(fd, start, end - start);
      if (copied !== end - start)
        throw new ArchiveContentError(`${archive} ended at byte ${start + copied} while it was being copied`);
    }
  } finally {
    closeSync(fd);
  }
}
