import { randomBytes } from "node:crypto";
import { mkdir, rmdir, stat, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import { topLevelPath } from "../../system/btrfs.js";
import { isErrno, StowageError } from "../../system/errors.js";
import { run } from "../../system/exec.js";
import type { Logger } from "../../system/log.js";
import { umount } from "../../system/mount.js";
import { isMountPoint } from "../../system/mountinfo.js";
import { deadJournals, OwnedJournal } from "../../system/owned-journal.js";
import { listWorkloads, type Workload } from "../workloads/discover.js";
import { workloadPrefix } from "../workloads/layout.js";
import { stopOrder } from "../workloads/order.js";
import { dependantsOf, quiescedOf, workloadsOfPlan } from "../workloads/select.js";
import { type PlannedWorkload, planVolumes } from "../workloads/volumes.js";
import {
  openSnapshotJournal,
  SnapshotSet,
  type SubvolumeSnapshot,
  snapshotKey,
  topLevels,
} from "./snapshots.js";
import { withStateLock } from "./state-lock.js";
import { withContainersStoppedJournaled } from "./stop-journal.js";
import { bindLines } from "./volume-backup.js";

export interface SessionOptions {
  stateDir: string;
  /** Where Backrest's restic reads a plan's volumes: `<root>/[<project>/]<service>/<destination>`. */
  volumesRoot: string;
  volumePrefix: string;
  excludeBindMounts: boolean;
  includeProject: boolean;
  planIdPrefix: string;
  quiesceLabel: string;
  stopTimeoutSeconds: number;
  onlyLabels: readonly string[];
}

/** What prepare did: the paths restic reads, and each stopped container's downtime. */
export interface Prepared {
  planId: string;
  paths: string[];
  snapshots: string[];
  downtime: Array<{ container: string; seconds: number }>;
}

/** A plan's backup could not be prepared, or was not whole: an error Backrest's hook shows. */
export class SessionError extends StowageError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super("EXEC_FAILED", message);
  }
}

/** One prepared plan: its snapshots, mounted read-only where Backrest's restic reads them. */
interface Session {
  planId: string;
  runId: string;
  started: number;
  scratch: string;
  snapshots: SubvolumeSnapshot[];
  /** Bind mounts under the volumes root, in the order they were made. */
  binds: string[];
  /** Directories we made under the volumes root, shallowest first. */
  dirs: string[];
  snapshotJournal: OwnedJournal;
  mountJournal: OwnedJournal;
}

/** A record of a `.mounts` journal: what a session mounted, to be undone after a crash. */
type MountRecord = { plan: string } | { scratch: string } | { dir: string } | { bind: string };

const MOUNTS = ".mounts";
const journalDir = (stateDir: string) => path.join(stateDir, "journal");
const interruptedMark = (stateDir: string, planId: string) =>
  path.join(journalDir(stateDir), `${encodeURIComponent(planId)}.interrupted`);

const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );

/** The directories `mkdir -p target` makes below `root` (shallowest first): those that are missing. */
async function missingDirs(root: string, target: string): Promise<string[]> {
  const missing: string[] = [];
  for (let dir = target; dir.startsWith(`${root}/`); dir = path.posix.dirname(dir)) {
    if (await exists(dir)) break;
    missing.unshift(dir);
  }
  return missing;
}

/**
 * Snapshot plans as Backrest runs them. `prepare` (Backrest's start hook): the plan's quiesced
 * containers (and quiesced ones that depend on them) stop, one read-only btrfs snapshot per
 * subvolume is taken, they start again at once, and the snapshots are bound read-only at
 * `<volumes root>/[<project>/]<service>/<destination>`, the paths backup-once stores, for
 * Backrest's restic to read. `finish` (its end and error hooks) unmounts and deletes them. Every
 * step is journaled first: after a crash, `recoverMounts` and the snapshot journal undo it.
 */
export class PlanSessions {
  private readonly sessions = new Map<string, Session>();
  /** One prepare or finish per plan at a time. */
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(
    private readonly docker: Docker,
    private readonly options: SessionOptions,
    private readonly log: Logger,
  ) {}

  /** Plans with a prepared snapshot, and since when (ms). */
  open(): Array<{ planId: string; started: number }> {
    return [...this.sessions.values()].map((s) => ({ planId: s.planId, started: s.started }));
  }

  prepare(planId: string): Promise<Prepared> {
    return this.serially(planId, () => this.prepareNow(planId));
  }

  /** Unmount and delete a plan's snapshots; nothing to do is fine (both end and error hooks call it). */
  finish(planId: string, reason = "finished"): Promise<void> {
    return this.serially(planId, () => this.finishNow(planId, reason));
  }

  private async serially<T>(planId: string, work: () => Promise<T>): Promise<T> {
    const before = this.busy.get(planId) ?? Promise.resolve();
    const next = before.catch(() => {}).then(work);
    this.busy.set(planId, next);
    try {
      return await next;
    } finally {
      if (this.busy.get(planId) === next) this.busy.delete(planId);
    }
  }

  /** The plan's labelled containers, as reconcile made its plan id; all of them besides. */
  private async workloadsOf(planId: string): Promise<{ all: Workload[]; own: Workload[] }> {
    const all = await listWorkloads(this.docker, this.options.onlyLabels);
    const own = workloadsOfPlan(all, planId, this.options);
    if (own.length === 0) throw new SessionError(`no labelled container has plan id ${planId}`, 404);
    return { all, own };
  }

  private async prepareNow(planId: string): Promise<Prepared> {
    const { options, log } = this;
    if (this.sessions.has(planId)) await this.finishNow(planId, "a new backup of the plan started");
    await unlink(interruptedMark(options.stateDir, planId)).catch(() => {});
    const { all, own } = await this.workloadsOf(planId);
    const { planned, failed } = await planVolumes(this.docker, own, {
      mode: "btrfs",
      excludeBindMounts: options.excludeBindMounts,
      volumePrefix: options.volumePrefix,
    });
    if (failed.length > 0)
      throw new SessionError(failed.map((f) => `${f.workload.name}: ${f.error}`).join("; "), 409);
    const runId = `${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
    const set = SnapshotSet.of(runId, planned);
    const scratch = path.join(options.stateDir, "sessions", runId);
    const prefix = workloadPrefix(own[0] as Workload, options.volumesRoot, options.includeProject);
    const quiesced = quiescedOf(all, options.quiesceLabel);
    const ownQuiesced = quiesced.filter((w) => own.includes(w));
    const toStop = [...ownQuiesced, ...dependantsOf(quiesced, ownQuiesced)];
    const mountJournal = await OwnedJournal.create(journalDir(options.stateDir), `${runId}${MOUNTS}`);
    const snapshotJournal = await openSnapshotJournal(options.stateDir, runId, set.entries);
    const session: Session = {
      planId,
      runId,
      started: Date.now(),
      scratch,
      snapshots: set.entries,
      binds: [],
      dirs: [],
      snapshotJournal,
      mountJournal,
    };
    this.sessions.set(planId, session);
    const downtime: Prepared["downtime"] = [];
    try {
      mountJournal.append([{ plan: planId }, { scratch }]);
      await mkdir(scratch, { recursive: true, mode: 0o700 });
      const stoppedAt = new Map<string, number>();
      await withStateLock(options.stateDir, "prepare", { log }, () =>
        withContainersStoppedJournaled(
          this.docker,
          options.stateDir,
          stopOrder(toStop),
          {
            timeoutSeconds: options.stopTimeoutSeconds,
            onStopping: (c) => {
              stoppedAt.set(c.id, Date.now());
              log.info(
                { action: "quiesce.stop", plan_id: planId, container: c.name },
                "stopping for the snapshot",
              );
            },
            onStarted: (c) => {
              const seconds = (Date.now() - (stoppedAt.get(c.id) ?? Date.now())) / 1000;
              downtime.push({ container: c.name, seconds });
              log.info(
                { action: "quiesce.start", plan_id: planId, container: c.name, downtime_seconds: seconds },
                "started again",
              );
            },
          },
          () => this.snapshot(session),
        ),
      );
      await this.bind(session, planned, prefix);
    } catch (error) {
      await this.finishNow(planId, "prepare failed").catch((cleanup: Error) =>
        log.error(
          { action: "session.cleanup-failed", plan_id: planId, err: cleanup.message },
          "cleanup failed",
        ),
      );
      if (error instanceof StowageError) throw error;
      throw new SessionError(`cannot prepare plan ${planId}: ${(error as Error).message}`, 500);
    }
    log.info(
      {
        action: "session.prepared",
        plan_id: planId,
        path: prefix,
        snapshots: set.entries.map((e) => e.name),
      },
      "snapshots taken and mounted for Backrest",
    );
    return { planId, paths: [prefix], snapshots: set.entries.map((e) => e.name), downtime };
  }

  /** The top levels under a private tmpfs at the session's scratch dir, and the snapshots in them. */
  private async snapshot(session: Session): Promise<void> {
    const lines = session.snapshots.map(
      (s) =>
        `btrfs subvolume snapshot -r ${topLevelPath(session.scratch, s.uuid, s.subvolume)} ${topLevelPath(session.scratch, s.uuid, s.name)} > /dev/null`,
    );
    await run("bash", [
      "-c",
      ["set -eu", ...topLevels(session.scratch, session.snapshots), ...lines].join("\n"),
    ]);
  }

  /** Each workload's mounts bound read-only under the prefix (every target journaled first). */
  private async bind(session: Session, planned: readonly PlannedWorkload[], prefix: string): Promise<void> {
    const snapshots = new Map(session.snapshots.map((s) => [snapshotKey(s, s.subvolume), s]));
    const seen = new Set<string>();
    for (const p of planned) {
      const sources = p.sources.filter((s) => !seen.has(s.destination));
      for (const s of sources) seen.add(s.destination);
      const targets = sources.flatMap((s) => {
        const target = path.posix.join(prefix, s.destination);
        return [target, ...s.nested.map((n) => path.posix.join(target, n.below))];
      });
      const dirs: string[] = [];
      for (const target of targets)
        for (const dir of await missingDirs(this.options.volumesRoot, target))
          if (!dirs.includes(dir) && !session.dirs.includes(dir)) dirs.push(dir);
      session.mountJournal.append([...dirs.map((dir) => ({ dir })), ...targets.map((bind) => ({ bind }))]);
      session.dirs.push(...dirs);
      session.binds.push(...targets);
      const lines = bindLines({ ...p, sources }, prefix, session.scratch, snapshots);
      await run("bash", ["-c", ["set -eu", ...lines].join("\n")]);
    }
  }

  private async finishNow(planId: string, reason: string): Promise<void> {
    const session = this.sessions.get(planId);
    if (!session) {
      const mark = interruptedMark(this.options.stateDir, planId);
      if (await exists(mark)) {
        await unlink(mark);
        throw new SessionError(
          `the snapshot plan ${planId}'s backup read was cleaned up before it ended (the sidecar restarted during the backup): this backup may be incomplete; run it again`,
          409,
        );
      }
      return;
    }
    const { scratch } = session;
    await unmountAll([...session.binds].reverse());
    if (await isMountPoint(scratch)) {
      const lines = session.snapshots.map((s) => {
        const where = topLevelPath(scratch, s.uuid, s.name);
        return `if [ -e ${where} ]; then btrfs subvolume delete ${where} > /dev/null; fi`;
      });
      await run("bash", ["-c", ["set -eu", ...lines].join("\n")]);
      await umount(scratch, { recursive: true });
    }
    await removeDirs([...session.dirs, scratch].reverse());
    await session.snapshotJournal.remove();
    await session.mountJournal.remove();
    this.sessions.delete(planId);
    this.log.info({ action: "session.finished", plan_id: planId, reason }, "snapshots unmounted and deleted");
  }
}

/** Unmount each target that is mounted (innermost first); a busy one is an error naming it. */
async function unmountAll(targets: readonly string[]): Promise<void> {
  for (const target of targets) if (await isMountPoint(target)) await umount(target);
}

async function removeDirs(dirs: readonly string[]): Promise<void> {
  for (const dir of dirs)
    await rmdir(dir).catch((error: unknown) => {
      if (!isErrno(error, "ENOENT") && !isErrno(error, "ENOTEMPTY")) throw error;
    });
}

/**
 * What dead sessions mounted (their `.mounts` journals): binds unmounted, scratch unmounted,
 * directories removed, so that recoverSnapshots can then delete their snapshots. A plan whose
 * binds were still mounted is marked interrupted: a backup may have been reading them, and its
 * finish hook then fails rather than let an incomplete read pass. Called under the state lock.
 */
export async function recoverMounts(stateDir: string, log: Logger): Promise<number> {
  let cleaned = 0;
  for (const journal of await deadJournals<MountRecord>(journalDir(stateDir), MOUNTS)) {
    const plan = journal.records.find((r): r is { plan: string } => "plan" in r)?.plan;
    const binds = journal.records.flatMap((r) => ("bind" in r ? [r.bind] : []));
    const scratch = journal.records.find((r): r is { scratch: string } => "scratch" in r)?.scratch;
    const dirs = journal.records.flatMap((r) => ("dir" in r ? [r.dir] : []));
    try {
      const mounted = [];
      for (const target of binds) if (await isMountPoint(target)) mounted.push(target);
      if (mounted.length > 0 && plan !== undefined)
        await writeFile(interruptedMark(stateDir, plan), `${new Date().toISOString()}\n`, { mode: 0o600 });
      await unmountAll([...mounted].reverse());
      if (scratch && (await isMountPoint(scratch))) await umount(scratch, { recursive: true });
      await removeDirs([...dirs, ...(scratch ? [scratch] : [])].reverse());
    } catch (error) {
      log.error(
        { action: "recover.failed", journal: journal.file, err: (error as Error).message },
        "cannot unmount what a crashed sidecar mounted for Backrest; kept for a later recover",
      );
      continue;
    }
    await unlink(journal.file);
    cleaned++;
    log.warn(
      { action: "recover.mounts", journal: journal.file, plan },
      "unmounted a crashed sidecar's snapshots",
    );
  }
  return cleaned;
}
