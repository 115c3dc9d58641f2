import { createReadStream } from "node:fs";
import type { Member } from "../tar/reader.js";

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

/** Stream those ranges of the archive, as they are (headers, data and padding untouched). */
export async function* rangeBytes(
  archive: string,
  ranges: ReadonlyArray<[number, number]>,
): AsyncGenerator<Buffer> {
  for (const [start, end] of ranges) {
    if (end > start) yield* createReadStream(archive, { start, end: end - 1, highWaterMark: 1024 * 1024 });
  }
}
