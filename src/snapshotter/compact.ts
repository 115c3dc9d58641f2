import { writeFileAtomic } from "../system/atomic-write.js";
import { ConfigError } from "../system/errors.js";
import { type HeldLock, withLock } from "../system/lock.js";
import { isMountPoint } from "../system/mountinfo.js";
import { TimeSlice } from "../system/signals.js";
import { writeArchive } from "../tar/archive-writer.js";
import { END_OF_ARCHIVE } from "../tar/header.js";
import { openArchive } from "./archive-file.js";
import { entriesIn } from "./archive-map.js";
import { copyRanges, keptRanges } from "./ranges.js";

/**
 * `snapshotter compact`: rewrite the archive without superseded copies and leftovers of
 * interrupted backups (temp file beside it, fsync, rename). Needs a plain file, not a bind mount.
 */
export async function compactArchive(
  archive: string,
): Promise<{ droppedEntries: number; droppedCopies: number }> {
  if (await isMountPoint(archive)) {
    throw new ConfigError(
      `${archive} is a mount point (a file bind-mounted into a container) and cannot be replaced; run compact on the host's file`,
    );
  }
  return withLock(archive, (lock) => rewrite(archive, lock), { timeoutMs: 10 * 60_000, create: false });
}

async function rewrite(
  archive: string,
  lock: HeldLock,
): Promise<{ droppedEntries: number; droppedCopies: number }> {
  const { scan, map } = await openArchive(archive, { create: false });
  const drop = new Set([...map.incomplete.values()].flat());
  const superseded = map.copies.filter((copy) => copy.superseded);
  for (const copy of superseded) for (const span of [...copy.spans, copy.indexSpan]) drop.add(span);
  if (drop.size === 0 && scan.fileSize === scan.end + END_OF_ARCHIVE.length)
    return { droppedEntries: 0, droppedCopies: 0 };
  const rewrite = async (fd: number) => {
    await writeArchive(fd, 0, { slice: new TimeSlice() }, (writer) =>
      copyRanges(writer, archive, keptRanges(map.spans, drop)),
    );
  };
  await writeFileAtomic(archive, rewrite, { keepOwnership: true, beforeCommit: () => lock.check() });
  return { droppedEntries: entriesIn(drop), droppedCopies: superseded.length };
}
