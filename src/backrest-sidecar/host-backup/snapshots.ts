import { mkdir, unlink } from "node:fs/promises";
import path from "node:path";
import { devicesWithUuid } from "../../system/blkid.js";
import { type BtrfsFilesystem, mountTopLevelsScript, topLevelPath } from "../../system/btrfs.js";
import { ExecError, run } from "../../system/exec.js";
import type { Logger } from "../../system/log.js";
import { deadJournals, OwnedJournal } from "../../system/owned-journal.js";
import { shellQuote } from "../../system/shell-quote.js";
import type { PlannedWorkload } from "../workloads/volumes.js";

/** A read-only snapshot of one subvolume, named at the filesystem's top level. */
export interface SubvolumeSnapshot extends BtrfsFilesystem {
  subvolume: string;
  name: string;
}

/** How a run's snapshots are looked up: by filesystem and subvolume. */
export const snapshotKey = (fs: BtrfsFilesystem, subvolume: string) => `${fs.uuid}\0${subvolume}`;

/** The snapshots of a run: one per subvolume, whatever number of mounts lie in it. */
export class SnapshotSet {
  readonly entries: SubvolumeSnapshot[] = [];

  constructor(private readonly runId: string) {}

  /** Every subvolume the workloads' sources lie in or hold nested. */
  static of(runId: string, planned: readonly PlannedWorkload[]): SnapshotSet {
    const set = new SnapshotSet(runId);
    for (const p of planned)
      for (const source of p.sources) {
        if (!source.location) continue;
        set.add(source.location, source.location.subvolume);
        for (const nested of source.nested) set.add(source.location, nested.subvolume);
      }
    return set;
  }

  byKey(): Map<string, SubvolumeSnapshot> {
    return new Map(this.entries.map((e) => [snapshotKey(e, e.subvolume), e]));
  }

  add(fs: BtrfsFilesystem, subvolume: string): SubvolumeSnapshot {
    const known = this.entries.find((e) => snapshotKey(e, e.subvolume) === snapshotKey(fs, subvolume));
    if (known) return known;
    const entry = {
      uuid: fs.uuid,
      devices: fs.devices,
      subvolume,
      name: `.stowage-snap-${this.runId}-${this.entries.length + 1}`,
    };
    this.entries.push(entry);
    return entry;
  }
}

const unshareBash = (script: string[]) => [
  "--mount",
  "--propagation",
  "private",
  "bash",
  "-c",
  ["set -eu", ...script].join("\n"),
];

/**
 * The script prefix: a private tmpfs over `scratch` (mode 0755: the backup's /volumes is this
 * tmpfs too), then every filesystem's top level under it.
 */
export function topLevels(scratch: string, filesystems: readonly BtrfsFilesystem[]): string[] {
  return [
    `mount -t tmpfs -o mode=0755 stowage-volumes ${shellQuote(scratch)}`,
    ...mountTopLevelsScript(scratch, filesystems),
  ];
}

/** Take the snapshots (read-only), in a private mount namespace: nothing of it shows on the host. */
export async function takeSnapshots(scratch: string, snapshots: readonly SubvolumeSnapshot[]): Promise<void> {
  if (snapshots.length === 0) return;
  const lines = snapshots.map(
    (s) =>
      `btrfs subvolume snapshot -r ${topLevelPath(scratch, s.uuid, s.subvolume)} ${topLevelPath(scratch, s.uuid, s.name)} > /dev/null`,
  );
  await run("unshare", unshareBash([...topLevels(scratch, snapshots), ...lines]));
}

/** Delete the snapshots that exist (idempotent: a crashed run's may be gone already). */
export async function deleteSnapshots(
  scratch: string,
  snapshots: readonly SubvolumeSnapshot[],
): Promise<void> {
  if (snapshots.length === 0) return;
  const lines = snapshots.map((s) => {
    const where = topLevelPath(scratch, s.uuid, s.name);
    return `if [ -e ${where} ]; then btrfs subvolume delete ${where} > /dev/null || failed=1; fi`;
  });
  await run(
    "unshare",
    unshareBash([...topLevels(scratch, snapshots), "failed=0", ...lines, 'exit "$failed"']),
  );
}

const SUFFIX = ".snapshots";

/**
 * A run's snapshots are written down (fsync) before any is taken, with the run's owner: a run that
 * dies leaves the journal for the next run (or `recover`) to delete every snapshot it names; one
 * that ends deletes them and then the journal.
 */
export async function openSnapshotJournal(
  stateDir: string,
  runId: string,
  snapshots: readonly SubvolumeSnapshot[],
): Promise<OwnedJournal> {
  const journal = await OwnedJournal.create(path.join(stateDir, "journal"), `${runId}${SUFFIX}`);
  journal.append(
    snapshots.map((s) => ({ uuid: s.uuid, devices: s.devices, subvolume: s.subvolume, name: s.name })),
  );
  return journal;
}

export interface SnapshotRecovery {
  removed: number;
  /** Journals kept because their filesystem is not attached (a disk unplugged): tried again later. */
  waiting: Array<{ journal: string; uuid: string }>;
}

/**
 * Delete the snapshots of dead runs (their journals in `stateDir`), finding each filesystem by
 * UUID now; a private tmpfs over `<stateDir>/scratch` holds the mounts, in our namespace only.
 * Live runs' journals are left alone. Called under the state dir's lock.
 */
export async function recoverSnapshots(stateDir: string, log: Logger): Promise<SnapshotRecovery> {
  const result: SnapshotRecovery = { removed: 0, waiting: [] };
  const scratch = path.join(stateDir, "scratch");
  for (const journal of await deadJournals<SubvolumeSnapshot>(path.join(stateDir, "journal"), SUFFIX)) {
    const present: SubvolumeSnapshot[] = [];
    const missing: string[] = [];
    for (const snapshot of journal.records) {
      const devices = await devicesWithUuid(snapshot.uuid);
      if (devices.length === 0) missing.push(snapshot.uuid);
      else present.push({ ...snapshot, devices });
    }
    if (missing.length > 0) {
      for (const uuid of new Set(missing)) result.waiting.push({ journal: journal.file, uuid });
      log.warn(
        { action: "recover.waiting", journal: journal.file },
        "a crashed run's snapshots wait for their filesystem to be attached",
      );
      continue;
    }
    try {
      await mkdir(scratch, { recursive: true, mode: 0o700 });
      await deleteSnapshots(scratch, present);
    } catch (error) {
      if (!(error instanceof ExecError)) throw error;
      log.error(
        { action: "recover.failed", journal: journal.file, err: error.message },
        "cannot delete a crashed run's snapshots",
      );
      continue;
    }
    await unlink(journal.file);
    result.removed += present.length;
    log.info(
      { action: "recover.snapshots", journal: journal.file, snapshots: present.map((s) => s.name) },
      "removed a crashed run's snapshots",
    );
  }
  return result;
}
