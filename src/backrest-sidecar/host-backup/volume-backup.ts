import path from "node:path";
import { type BtrfsLocation, topLevelPath } from "../../system/btrfs.js";
import { ExecError, run } from "../../system/exec.js";
import type { Logger } from "../../system/log.js";
import { shellQuote } from "../../system/shell-quote.js";
import type { PlannedWorkload } from "../workloads/volumes.js";
import { type ResticContext, resticOptions, SummaryReader } from "./restic.js";
import type { RunState } from "./run-state.js";
import { type SubvolumeSnapshot, snapshotKey, topLevels } from "./snapshots.js";

/**
 * The bash lines that bind each mount of a workload read-only at `<prefix>/<destination>`: from
 * its btrfs snapshot (nested subvolumes' snapshots bound over their empty directories, the
 * filesystems' top levels mounted under `scratch` already) or live. A missing source ends the
 * script before anything reads it.
 */
export function bindLines(
  planned: PlannedWorkload,
  prefix: string,
  scratch: string,
  snapshots: ReadonlyMap<string, SubvolumeSnapshot>,
): string[] {
  const snapshotOf = (location: BtrfsLocation, subvolume: string) => {
    const snapshot = snapshots.get(snapshotKey(location, subvolume));
    if (!snapshot) throw new Error(`no snapshot of subvolume ${subvolume || "<top level>"} was taken`);
    return snapshot;
  };
  const lines: string[] = [];
  const bindRo = (from: string, to: string) => [
    `mount --bind ${from} ${to}`,
    `mount -o remount,bind,ro ${to}`,
  ];
  for (const source of planned.sources) {
    const location = planned.snapshot ? source.location : undefined;
    const from = location
      ? topLevelPath(scratch, location.uuid, snapshotOf(location, location.subvolume).name, location.relative)
      : shellQuote(source.hostPath);
    const target = path.posix.join(prefix, source.destination);
    const to = shellQuote(target);
    const missing = `mount source ${source.hostPath} (for ${source.destination}) does not exist`;
    lines.push(
      `[ -e ${from} ] || { echo ${shellQuote(missing)} >&2; exit 1; }`,
      source.file ? `mkdir -p ${shellQuote(path.posix.dirname(target))} && touch ${to}` : `mkdir -p ${to}`,
      ...bindRo(from, to),
    );
    for (const nested of location ? source.nested : []) {
      const snapshot = snapshotOf(location as BtrfsLocation, nested.subvolume);
      const inner = shellQuote(path.posix.join(target, nested.below));
      lines.push(...bindRo(topLevelPath(scratch, (location as BtrfsLocation).uuid, snapshot.name), inner));
    }
  }
  return lines;
}

/** The filesystems a workload's snapshots lie on (none when it is read live). */
export function snapshotLocations(planned: PlannedWorkload): BtrfsLocation[] {
  return planned.snapshot ? planned.sources.flatMap((s) => (s.location ? [s.location] : [])) : [];
}

/**
 * One workload's volumes into restic: its mounts bound as bindLines says, then `restic backup` of
 * `prefix`, so `forget --path <prefix>` keeps each workload's own history. Any mount that cannot be
 * made fails the workload before restic runs: no snapshot with data missing is ever made.
 */
export async function backUpVolumes(
  planned: PlannedWorkload,
  prefix: string,
  scratch: string,
  snapshots: ReadonlyMap<string, SubvolumeSnapshot>,
  restic: ResticContext,
  tags: readonly string[],
  state: RunState,
  log: Logger,
): Promise<void> {
  const { workload } = planned;
  const mode = planned.snapshot ? "snapshot" : "live";
  const entry = state.report(workload, mode);
  const started = Date.now();
  log.info({ action: "backup.workload", container: workload.name, path: prefix, mode }, "backing up");
  const summary = new SummaryReader();
  const tagFlags = tags.map((t) => `--tag ${shellQuote(t)}`).join(" ");
  const script = [
    "set -eu",
    // A private tmpfs over the scratch dir and the top levels under it: nothing shows on the host.
    ...topLevels(scratch, snapshotLocations(planned)),
    ...bindLines(planned, prefix, scratch, snapshots),
    // exec: the process the abort signal stops is restic itself.
    `exec restic backup --json --quiet ${(restic.lockFlags ?? []).map(shellQuote).join(" ")} ${tagFlags} ${shellQuote(prefix)}`,
  ];
  try {
    await run(
      "unshare",
      ["--mount", "--propagation", "private", "bash", "-c", script.join("\n")],
      resticOptions(restic, { onStdout: summary.push }),
    );
    const result = summary.end();
    if (result?.snapshotId) entry.snapshots.push(result.snapshotId);
    entry.files += result?.totalFiles ?? 0;
    entry.bytesAdded += result?.dataAdded ?? 0;
  } catch (error) {
    if (!(error instanceof ExecError)) throw error;
    log.error({ action: "backup.failed", container: workload.name, err: error.message }, "backup failed");
    state.fail(workload, error.message, mode);
  } finally {
    entry.durationSeconds += (Date.now() - started) / 1000;
  }
}
