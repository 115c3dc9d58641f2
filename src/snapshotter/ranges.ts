import { closeSync, openSync } from "node:fs";
import type { ArchiveWriter } from "../tar/archive-writer.js";
import { addToSpans, type Span } from "./archive-map.js";
import { ArchiveContentError } from "./errors.js";

/** Byte ranges of an archive that hold the spans not dropped, adjacent ones merged. */
export function keptRanges(spans: readonly Span[], drop: ReadonlySet<Span>): Span[] {
  const kept: Span[] = [];
  for (const span of spans) if (!drop.has(span)) addToSpans(kept, span.start, span.end, span.entries);
  return kept;
}

/** Copy those ranges of the archive, as they are (headers, data and padding untouched). */
export async function copyRanges(
  writer: ArchiveWriter,
  archive: string,
  ranges: readonly Span[],
): Promise<void> {
  const fd = openSync(archive, "r");
  try {
    for (const { start, end } of ranges) {
      const copied = await writer.copyFrom(fd, start, end - start);
      if (copied !== end - start)
        throw new ArchiveContentError(`${archive} ended at byte ${start + copied} while it was being copied`);
    }
  } finally {
    closeSync(fd);
  }
}
