import { randomBytes } from "node:crypto";
import { mkdir, rmdir, stat } from "node:fs/promises";
import type Docker from "dockerode";
import { writeFileAtomic } from "../../system/atomic-write.js";
import { ContainersLeftStoppedError } from "../../system/docker.js";
import { isErrno } from "../../system/errors.js";
import { ExecError, run } from "../../system/exec.js";
import type { Logger } from "../../system/log.js";
import type { Workload } from "../workloads/discover.js";
import { LABEL } from "../workloads/labels.js";
import { backedUp, databaseEngine, dumped, dumpPath, workloadPrefix } from "../workloads/layout.js";
import { workloadPlanId } from "../workloads/plan-id.js";
import { quiescedOf } from "../workloads/select.js";
import type { SettingsDefaults } from "../workloads/settings.js";
import { type PlannedWorkload, planVolumes, type SnapshotMode } from "../workloads/volumes.js";
import { dumpDatabase } from "./databases.js";
import { forget, forgetPlans } from "./forget.js";
import {
  notificationTargets,
  notify,
  notifyWorkloads,
  pingStart,
  type WorkloadTargets,
} from "./notifications.js";
import { recoverLocked } from "./recover.js";
import { type RunReport, type WorkloadReport, writeMetricsFile } from "./report.js";
import { lockWaitFlags, type ResticContext, resticEnvironment } from "./restic.js";
import { RunState } from "./run-state.js";
import { deleteSnapshots, openSnapshotJournal, SnapshotSet, takeSnapshots } from "./snapshots.js";
import { withStateLock } from "./state-lock.js";
import { backUpVolumes } from "./volume-backup.js";

export interface BackupOnceOptions {
  quiesceLabel: string;
  stopTimeoutSeconds: number;
  excludeBindMounts: boolean;
  includeProject: boolean;
  rcbImage: string | undefined;
  rcbEnvFile: string | undefined;
  /** `docker run --network` for the rcb container (default: Docker's default network). */
  rcbNetwork: string | undefined;
  /** Where the native engine mounts the volumes (rcb's layout): /volumes. */
  volumesRoot: string;
  /** Where named volumes are on this host (`<prefix>/<name>/_data`), as for plans. */
  volumePrefix: string;
  /**
   * What a workload gets where its labels are silent (its repository's `--repo-defaults`, then
   * `--default-retention`), as its Backrest plan gets it: keep spec, notification targets.
   */
  settings: SettingsDefaults;
  /**
   * Tags that make Backrest list a workload's snapshots under its plan: `plan:<prefix><id>` always,
   * `created-by:<instance>` when Backrest's instance id is known (its config or its API).
   */
  backrest: { planIdPrefix: string; instance: string | undefined };
  /** auto: btrfs snapshots where every mount source is on btrfs; btrfs: always (else fail); off. */
  snapshotMode: SnapshotMode;
  /** Skip `restic forget` (an append-only repository: its owner prunes). */
  noForget: boolean;
  /** Journals of snapshots (for recovery after a crash) and the run lock live here. */
  stateDir: string;
  reportFile: string | undefined;
  metricsFile: string | undefined;
  notifyUrls: readonly string[];
  /** Told the finished report (also when the run failed or was interrupted), for the summary table. */
  onReport?: (report: RunReport) => void;
  /** SIGINT/SIGTERM/SIGHUP: restic is killed and awaited, containers started, the rest skipped. */
  signal: AbortSignal;
}

/** The mount point the native engine needs; made (and removed afterwards) only if missing. */
async function withVolumesRoot<T>(root: string, work: () => Promise<T>): Promise<T> {
  const made = await stat(root).then(
    () => false,
    async (error: unknown) => {
      if (!isErrno(error, "ENOENT")) throw error;
      await mkdir(root, { recursive: true, mode: 0o755 });
      return true;
    },
  );
  try {
    return await work();
  } finally {
    if (made) await rmdir(root).catch(() => {});
  }
}

/** rcb's one-shot container, exactly as the seed runs it: one result for all its workloads. */
async function rcbBackup(image: string, options: BackupOnceOptions, log: Logger): Promise<WorkloadReport> {
  const args = ["run", "--rm", "-v", "/var/run/docker.sock:/tmp/docker.sock:ro"];
  if (options.rcbEnvFile) args.push("--env-file", options.rcbEnvFile);
  if (options.rcbNetwork) args.push("--network", options.rcbNetwork);
  if (options.excludeBindMounts) args.push("-e", "EXCLUDE_BIND_MOUNTS=1");
  if (options.includeProject) args.push("-e", "INCLUDE_PROJECT_NAME=1");
  log.info({ action: "backup.rcb", image }, "running restic-compose-backup");
  const entry: WorkloadReport = {
    workload: `rcb (${image})`,
    mode: "live",
    snapshots: [],
    files: 0,
    bytesAdded: 0,
    durationSeconds: 0,
    status: "ok",
  };
  const started = Date.now();
  try {
    await run("docker", [...args, image, "rcb", "backup"], { signal: options.signal });
  } catch (error) {
    if (!(error instanceof ExecError)) throw error;
    log.error({ action: "backup.failed", err: error.message }, "backup failed");
    entry.status = "failed";
    entry.error = error.message;
  }
  entry.durationSeconds = (Date.now() - started) / 1000;
  return entry;
}

/** The seed's exit codes for backup-once: 0 all done, 3 some workloads failed, 1 nothing done. */
export interface BackupOnceResult {
  status: 0 | 1 | 3;
  report: RunReport;
}

/** What every phase of a run needs. */
interface Run {
  docker: Docker;
  options: BackupOnceOptions;
  restic: ResticContext;
  state: RunState;
  log: Logger;
}

/**
 * A workload's snapshot tags: `container:<name>`; `plan:<plan id>` and `created-by:<instance>`,
 * which make Backrest list it under the workload's plan; `run:<id>`, by which restore finds the
 * run's other snapshots.
 */
function tagsOf(run: Run, workload: Workload): string[] {
  const { planIdPrefix, instance } = run.options.backrest;
  return [
    `container:${workload.name}`,
    `plan:${workloadPlanId(workload, planIdPrefix, run.options.includeProject)}`,
    ...(instance ? [`created-by:${instance}`] : []),
    `run:${run.state.runId}`,
  ];
}

const abortPoint = (run: Run) => {
  if (run.options.signal.aborted) throw run.options.signal.reason;
};

const stopOptions = (run: Run) => ({
  timeoutSeconds: run.options.stopTimeoutSeconds,
  signal: run.options.signal,
  stateDir: run.options.stateDir,
});

/** Databases first, app-consistent, their containers running: each dump streamed into restic. */
async function dumpDatabases(run: Run, workloads: readonly Workload[]): Promise<void> {
  for (const workload of dumped(workloads)) {
    const engine = databaseEngine(workload);
    if (!engine) continue;
    abortPoint(run);
    const file = dumpPath(workload, run.options.includeProject);
    run.log.info({ action: "dump", container: workload.name, engine, path: file }, "dumping databases");
    const begin = Date.now();
    const entry = run.state.report(workload, "dump");
    try {
      const dump = await dumpDatabase(run.docker, workload, engine, file, run.restic, tagsOf(run, workload));
      entry.snapshots.push(dump.snapshotId);
      entry.dumpBytes = dump.bytes;
      entry.bytesAdded += dump.dataAdded;
    } catch (error) {
      abortPoint(run);
      const message = (error as Error).message;
      run.log.error({ action: "dump.failed", container: workload.name, err: message }, "dump failed");
      run.state.fail(workload, message);
    } finally {
      entry.durationSeconds += (Date.now() - begin) / 1000;
    }
  }
}

const prefixOf = (run: Run, workload: Workload) =>
  workloadPrefix(workload, run.options.volumesRoot, run.options.includeProject);

/**
 * Snapshot mode: the quiesced containers stopped only while one read-only snapshot per subvolume
 * is taken (journaled first), started again at once; then each workload backed up from the
 * snapshots; the snapshots deleted whatever happens.
 */
async function backUpFromSnapshots(
  run: Run,
  planned: readonly PlannedWorkload[],
  toStop: readonly Workload[],
) {
  const { options } = run;
  const set = SnapshotSet.of(run.state.runId, planned);
  const journal = await openSnapshotJournal(options.stateDir, run.state.runId, set.entries);
  try {
    try {
      await run.state.stopped(run.docker, toStop, stopOptions(run), run.log, () =>
        takeSnapshots(options.volumesRoot, set.entries),
      );
    } catch (error) {
      if (!(error instanceof ExecError)) throw error;
      for (const p of planned) run.state.fail(p.workload, `btrfs snapshot: ${error.message}`, "snapshot");
      return;
    }
    run.log.info(
      { action: "snapshot.taken", snapshots: set.entries.map((e) => e.name) },
      "btrfs snapshots taken",
    );
    const snapshots = set.byKey();
    for (const p of planned) {
      abortPoint(run);
      await backUpVolumes(
        p,
        prefixOf(run, p.workload),
        options.volumesRoot,
        snapshots,
        run.restic,
        tagsOf(run, p.workload),
        run.state,
        run.log,
      );
    }
  } finally {
    await deleteSnapshots(options.volumesRoot, set.entries);
    await journal.remove();
  }
}

/** Live mode: the quiesced containers stopped for the whole backup of these workloads. */
async function backUpLive(run: Run, planned: readonly PlannedWorkload[], toStop: readonly Workload[]) {
  await run.state.stopped(run.docker, toStop, stopOptions(run), run.log, async () => {
    for (const p of planned) {
      abortPoint(run);
      await backUpVolumes(
        p,
        prefixOf(run, p.workload),
        run.options.volumesRoot,
        new Map(),
        run.restic,
        tagsOf(run, p.workload),
        run.state,
        run.log,
      );
    }
  });
}

/** What identifies a mount's data across containers: a volume's name, else the bind's source. */
const dataOf = (mount: { name?: string; source: string }) => mount.name ?? mount.source;

/**
 * Which quiesced containers stop when. A workload read live stays stopped for its whole backup; one
 * read from snapshots only while they are taken. A quiesced container that is not backed up itself
 * (an app in front of a database, say) stops for the snapshots, and for the live backup too when it
 * shares a volume or bind with a workload read live.
 */
export function stopWindows(
  quiescedOnes: readonly Workload[],
  fromSnapshots: readonly PlannedWorkload[],
  live: readonly PlannedWorkload[],
): { snapshotWindow: Workload[]; liveWindow: Workload[] } {
  const liveOnes = new Set(live.map((p) => p.workload));
  const snapshotOnes = new Set(fromSnapshots.map((p) => p.workload));
  const liveData = new Set(live.flatMap((p) => p.workload.mounts.map(dataOf)));
  const others = quiescedOnes.filter((w) => !liveOnes.has(w) && !snapshotOnes.has(w));
  return {
    snapshotWindow: fromSnapshots.length > 0 ? quiescedOnes.filter((w) => !liveOnes.has(w)) : [],
    liveWindow: [
      ...quiescedOnes.filter((w) => liveOnes.has(w)),
      ...others.filter((w) => fromSnapshots.length === 0 || w.mounts.some((m) => liveData.has(dataOf(m)))),
    ],
  };
}

/** The native engine's backup of every workload's volumes, snapshot mode where it can. */
async function backUpVolumesOf(run: Run, workloads: readonly Workload[]): Promise<void> {
  const { options } = run;
  const { planned, failed } = await planVolumes(run.docker, backedUp(workloads, options), {
    mode: options.snapshotMode,
    excludeBindMounts: options.excludeBindMounts,
    volumePrefix: options.volumePrefix,
  });
  for (const { workload, error } of failed) {
    run.log.error({ action: "backup.failed", container: workload.name, err: error }, "cannot back up");
    run.state.fail(workload, error);
  }
  if (planned.length === 0 && failed.length === 0 && dumped(workloads).length === 0)
    run.log.warn({ action: "backup.none" }, `no container has ${LABEL.volumes}=true; nothing to back up`);
  const toStop = quiescedOf(workloads, options.quiesceLabel);
  const fromSnapshots = planned.filter((p) => p.snapshot);
  const live = planned.filter((p) => !p.snapshot);
  const { snapshotWindow, liveWindow } = stopWindows(toStop, fromSnapshots, live);
  if (fromSnapshots.length > 0) await backUpFromSnapshots(run, fromSnapshots, snapshotWindow);
  if (live.length > 0) await backUpLive(run, live, liveWindow);
}

/** The report goes out whatever happened (a failed notification is only a warning). */
async function publish(
  report: RunReport,
  targets: readonly WorkloadTargets[],
  options: BackupOnceOptions,
  log: Logger,
): Promise<void> {
  if (options.reportFile)
    await writeFileAtomic(options.reportFile, `${JSON.stringify(report, null, 2)}\n`, { mode: 0o644 });
  if (options.metricsFile) await writeMetricsFile(options.metricsFile, report);
  await notify(options.notifyUrls, report, log);
  await notifyWorkloads(targets, report, log);
  options.onReport?.(report);
}

/**
 * backup-once, the complete flow: keep specs and restic settings checked; the state dir locked;
 * snapshots of crashed runs removed; databases dumped with their own clients, streamed into restic;
 * quiesced containers stopped only while btrfs snapshots of their subvolumes are taken (all in one
 * stop window), then started again and backed up from the snapshots; workloads not on btrfs backed
 * up live with their quiesced containers stopped meanwhile; containers ALWAYS started again, in
 * dependency order; snapshots always deleted; then forget per workload; then the report. A
 * container that cannot be started again fails the run (a ContainersLeftStoppedError, thrown
 * last); a signal kills restic, starts the containers, deletes the snapshots and ends the run.
 */
export async function backupOnce(
  docker: Docker,
  workloads: readonly Workload[],
  options: BackupOnceOptions,
  log: Logger,
): Promise<BackupOnceResult> {
  const forgets = options.noForget ? [] : forgetPlans(workloads, options);
  const env = await resticEnvironment(options.rcbEnvFile);
  const targets = options.rcbImage ? [] : notificationTargets(workloads, options, log);
  const stamp = new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, "")
    .slice(0, 14);
  const state = new RunState(`${stamp}-${randomBytes(3).toString("hex")}`);
  const r: Run = {
    docker,
    options,
    restic: { env, signal: options.signal, lockFlags: await lockWaitFlags(env) },
    state,
    log,
  };
  let thrown: unknown;
  try {
    await withStateLock(options.stateDir, "backup", { signal: options.signal, log }, () =>
      withVolumesRoot(options.volumesRoot, async () => {
        await recoverLocked(docker, options.stateDir, log);
        await pingStart(targets, log);
        if (options.rcbImage) {
          const image = options.rcbImage;
          await state.stopped(
            docker,
            quiescedOf(workloads, options.quiesceLabel),
            stopOptions(r),
            log,
            async () => {
              state.extra.push(await rcbBackup(image, options, log));
            },
          );
        } else {
          await dumpDatabases(r, workloads);
          await backUpVolumesOf(r, workloads);
        }
        await forget(forgets, { restic: r.restic, state, log, signal: options.signal });
      }),
    );
  } catch (error) {
    thrown = error;
  }
  const report = state.finish(thrown);
  await publish(report, targets, options, log);
  if (thrown !== undefined) throw thrown;
  if (state.leftStopped.length > 0) throw new ContainersLeftStoppedError(state.leftStopped);
  return { status: report.status as 0 | 1 | 3, report };
}
