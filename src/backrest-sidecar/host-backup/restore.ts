import { randomBytes } from "node:crypto";
import { lstat, mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import { createSubvolume, isSubvolumeRoot, locateBtrfs, nestedSubvolumes } from "../../system/btrfs.js";
import { StowageError } from "../../system/errors.js";
import { run } from "../../system/exec.js";
import type { Logger } from "../../system/log.js";
import { isMountPoint } from "../../system/mountinfo.js";
import type { OwnedJournal } from "../../system/owned-journal.js";
import { mountDataPath, selectMounts, type Workload } from "../workloads/discover.js";
import {
  backedUp,
  type DatabaseEngine,
  databaseEngine,
  dumpPath,
  workloadPrefix,
} from "../workloads/layout.js";
import { stopOrder } from "../workloads/order.js";
import { dependantsOf, selectWorkloads } from "../workloads/select.js";
import { loadDump, waitForDatabase } from "./databases.js";
import { recoverLocked } from "./recover.js";
import { partialStatus } from "./report.js";
import { listSnapshots, type ResticContext, type ResticSnapshot, resticOptions } from "./restic.js";
import { withStateLock } from "./state-lock.js";
import { withContainersStoppedJournaled } from "./stop-journal.js";
import { exists, openSwapJournal, type Swap } from "./swap-journal.js";

export interface RestoreOptions {
  workload: string;
  /** A snapshot id (or its short form), or "latest". */
  snapshot: string;
  dryRun: boolean;
  includeProject: boolean;
  excludeBindMounts: boolean;
  volumesRoot: string;
  volumePrefix: string;
  planIdPrefix: string;
  stopTimeoutSeconds: number;
  stateDir: string;
  /** How long a database gets to answer after it is started again (default 120 s). */
  databaseTimeoutMs?: number;
  restic: ResticContext;
}

/** What a restore did, or (--dry-run) would do. */
export interface RestoreStep {
  what: "volume" | "database";
  target: string;
  from: string;
  snapshot: string;
  status: "done" | "planned" | "failed";
  error?: string;
}

/** psql's complaints that loading a `pg_dumpall --clean` output always makes, and are harmless. */
const EXPECTED_PSQL = [/current user cannot be dropped/, /role "[^"]+" already exists/];

/** Error lines of a dump load that mean something was not restored. */
export function loadErrors(stderr: string): string[] {
  return stderr
    .split("\n")
    .filter((line) => /\bERROR\b/.test(line) && !EXPECTED_PSQL.some((expected) => expected.test(line)));
}

/** The snapshot a name means for one path: an id (or its beginning) or the latest. */
function pick(snapshots: readonly ResticSnapshot[], wanted: string): ResticSnapshot | undefined {
  if (wanted === "latest") return snapshots.at(-1);
  return snapshots.find((s) => s.id.startsWith(wanted) || s.short_id === wanted);
}

const runTag = (snapshot: ResticSnapshot | undefined) => snapshot?.tags?.find((t) => t.startsWith("run:"));

/**
 * `restore WORKLOAD`: stop the workload's running containers (and those that depend on them), put
 * each volume back from the snapshot, exactly (restic restore into a staging directory beside the
 * volume, on its filesystem, then two renames: files that were not in the snapshot are gone), start
 * the workload, load its database dump with the container's own client, then start the rest.
 */
export async function restoreWorkload(
  docker: Docker,
  workloads: readonly Workload[],
  options: RestoreOptions,
  log: Logger,
): Promise<RestoreStep[]> {
  const targets = selectWorkloads(workloads, options.workload, options);
  const first = targets[0] as Workload;
  const prefix = workloadPrefix(first, options.volumesRoot, options.includeProject);
  const engine = databaseEngine(first);
  const dumpFile = engine ? dumpPath(first, options.includeProject) : undefined;
  const withVolumes = backedUp(targets, options).length > 0;

  const volumeSnapshots = withVolumes ? await listSnapshots(options.restic, { path: prefix }) : [];
  const dumpSnapshots = dumpFile ? await listSnapshots(options.restic, { path: dumpFile }) : [];
  // An id may name the volumes' snapshot or the dump's; the other one is that run's (tag run:...).
  let volumes = pick(volumeSnapshots, options.snapshot);
  let dump = pick(dumpSnapshots, options.snapshot);
  if (options.snapshot !== "latest") {
    const tag = runTag(volumes) ?? runTag(dump);
    volumes ??= volumeSnapshots.find((s) => tag && s.tags?.includes(tag));
    dump ??= dumpSnapshots.find((s) => tag && s.tags?.includes(tag));
  }
  if (!volumes && !dump)
    throw new StowageError(
      "NOT_FOUND",
      `no snapshot ${options.snapshot} of ${options.workload} (${prefix}${dumpFile ? `, ${dumpFile}` : ""})`,
    );

  const volumeCache = new Map<string, string>();
  const steps: RestoreStep[] = [];
  const mounts = volumes ? selectMounts(first, options.excludeBindMounts) : [];
  for (const mount of mounts) {
    steps.push({
      what: "volume",
      target: await mountDataPath(docker, mount, options.volumePrefix, volumeCache),
      from: path.posix.join(prefix, mount.destination),
      snapshot: (volumes as ResticSnapshot).short_id,
      status: "planned",
    });
  }
  if (dump && dumpFile)
    steps.push({
      what: "database",
      target: first.name,
      from: dumpFile,
      snapshot: dump.short_id,
      status: "planned",
    });
  if (options.dryRun) return steps;

  return withStateLock(
    options.stateDir,
    "restore",
    { log, ...(options.restic.signal ? { signal: options.restic.signal } : {}) },
    async () => {
      await recoverLocked(docker, options.stateDir, log);
      return restoreLocked(docker, workloads, targets, steps, { engine, dump, dumpFile }, options, log);
    },
  );
}

async function restoreLocked(
  docker: Docker,
  workloads: readonly Workload[],
  targets: readonly Workload[],
  steps: RestoreStep[],
  database: {
    engine: DatabaseEngine | undefined;
    dump: ResticSnapshot | undefined;
    dumpFile: string | undefined;
  },
  options: RestoreOptions,
  log: Logger,
): Promise<RestoreStep[]> {
  const { engine, dump, dumpFile } = database;
  const first = targets[0] as Workload;
  const runId = randomBytes(6).toString("hex");
  const journal = await openSwapJournal(options.stateDir, runId);
  const dependants = dependantsOf(workloads, targets).filter((w) => w.running);
  // A dump is loaded with its server running: the workload itself stops only for its volumes.
  const own = steps.some((s) => s.what === "volume") ? targets.filter((w) => w.running) : [];
  const stop = {
    timeoutSeconds: options.stopTimeoutSeconds,
    ...(options.restic.signal ? { signal: options.restic.signal } : {}),
  };
  try {
    // Dependants stopped first and started last; the workload in between, so that its database
    // runs again (and gets its dump) before anything that uses it starts.
    await withContainersStoppedJournaled(docker, options.stateDir, stopOrder(dependants), stop, async () => {
      await withContainersStoppedJournaled(docker, options.stateDir, stopOrder(own), stop, async () => {
        for (const [index, step] of steps.filter((s) => s.what === "volume").entries())
          await restoreVolume(step, index, runId, journal, options, log);
      });
      const dbStep = steps.find((s) => s.what === "database");
      if (dbStep && engine && dump && dumpFile) {
        try {
          await waitForDatabase(docker, first.id, engine, options.databaseTimeoutMs ?? 120_000);
          const complaints = loadErrors(
            await loadDump(docker, first.id, engine, dump.id, dumpFile, options.restic),
          );
          if (complaints.length > 0) throw new StowageError("EXEC_FAILED", complaints.slice(0, 5).join("; "));
          dbStep.status = "done";
          log.info(
            { action: "restore.database", container: first.name, snapshot: dump.short_id },
            "database restored",
          );
        } catch (error) {
          if (options.restic.signal?.aborted) throw error;
          dbStep.status = "failed";
          dbStep.error = (error as Error).message;
          log.error(
            { action: "restore.failed", container: first.name, err: dbStep.error },
            "database not restored",
          );
        }
      }
    });
  } finally {
    await journal.remove();
  }
  return steps;
}

/**
 * The restored tree gets the btrfs layout of the one it replaces: where the target is a subvolume
 * (a snapshotted `@data`, perhaps mounted by name elsewhere) or holds nested subvolumes, the same
 * subvolumes are made in the staging tree before restic fills it, so the swap keeps them.
 */
async function sameSubvolumes(target: string, staged: string): Promise<void> {
  const info = await lstat(target).catch(() => undefined);
  if (!info?.isDirectory()) return;
  const location = await locateBtrfs(target);
  if (!location) return;
  await mkdir(path.dirname(staged), { recursive: true, mode: 0o700 });
  if (isSubvolumeRoot(info)) await createSubvolume(staged);
  else await mkdir(staged, { mode: 0o700 });
  for (const nested of await nestedSubvolumes(target, location)) {
    await mkdir(path.dirname(path.join(staged, nested.below)), { recursive: true, mode: 0o700 });
    await createSubvolume(path.join(staged, nested.below));
  }
}

/** One volume: restic restore into a staging dir beside it, then swap it into place. */
async function restoreVolume(
  step: RestoreStep,
  index: number,
  runId: string,
  journal: OwnedJournal,
  options: RestoreOptions,
  log: Logger,
): Promise<void> {
  const parent = path.dirname(step.target);
  const staging = path.join(parent, `.stowage-restore-${runId}-${index}`);
  const old = path.join(parent, `.stowage-old-${runId}-${index}`);
  const staged = path.join(staging, step.from);
  try {
    if (await isMountPoint(step.target))
      throw new StowageError(
        "CONFIG",
        `${step.target} is a mount point: it cannot be swapped for a restored tree (restore into it with restic restore)`,
      );
    // Written down first: whatever moment a kill comes, recovery knows what to finish or remove.
    journal.append([{ target: step.target, staged, old, staging } satisfies Swap]);
    await mkdir(staging, { mode: 0o700 });
    await sameSubvolumes(step.target, staged);
    await run(
      "restic",
      [
        "restore",
        ...(options.restic.lockFlags ?? []),
        step.snapshot,
        "--target",
        staging,
        "--include",
        step.from,
      ],
      resticOptions(options.restic),
    );
    if (!(await exists(staged)))
      throw new StowageError("NOT_FOUND", `${step.from} is not in snapshot ${step.snapshot}`);
    if (await exists(step.target)) await rename(step.target, old);
    await rename(staged, step.target);
    step.status = "done";
    log.info({ action: "restore.volume", target: step.target, snapshot: step.snapshot }, "volume restored");
  } catch (error) {
    if (options.restic.signal?.aborted) throw error;
    step.status = "failed";
    step.error = (error as Error).message;
    log.error({ action: "restore.failed", target: step.target, err: step.error }, "volume not restored");
    // Undo a half swap: the old tree back under its name.
    if (!(await exists(step.target)) && (await exists(old))) await rename(old, step.target);
  } finally {
    await rm(old, { recursive: true, force: true }).catch(() => {});
    await rm(staging, { recursive: true, force: true }).catch(() => {});
  }
}

/** What a restore prints (a line per step), the lines naming what was not restored, and its exit status. */
export function restoreOutcome(steps: readonly RestoreStep[]): {
  lines: string[];
  failures: string[];
  status: 0 | 1 | 3;
} {
  const verb = { planned: "would replace", done: "replaced", failed: "FAILED" } as const;
  const failed = steps.filter((s) => s.status === "failed");
  return {
    lines: steps.map(
      (s) =>
        `${verb[s.status]} ${s.what} ${s.target} from ${s.snapshot}:${s.from}${s.error ? `: ${s.error}` : ""}`,
    ),
    failures: failed.map((s) => `not restored: ${s.what} ${s.target}: ${s.error}`),
    status: partialStatus(failed.length, steps.length),
  };
}
