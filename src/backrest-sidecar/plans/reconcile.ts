import type Docker from "dockerode";
import { ConfigError } from "../../system/errors.js";
import type { Logger } from "../../system/log.js";
import { ConfigConflictError } from "../backrest/api.js";
import { canonical } from "../backrest/canonical.js";
import { configProblems } from "../backrest/rules.js";
import { type ConfigStore, type Json, type LoadedConfig, repoIds } from "../backrest/store.js";
import { listWorkloads, type Workload } from "../workloads/discover.js";
import { LABEL } from "../workloads/labels.js";
import type { SnapshotMode } from "../workloads/volumes.js";
import { buildPlans, type PlanOptions, type PlanSet } from "./build.js";
import { foreignProblems, type MergeResult, mergePlans } from "./merge.js";
import type { HostMetrics } from "./metrics.js";
import { planModes, type WorkloadMode } from "./modes.js";

export interface ReconcileOptions {
  /** Backrest's config file, or a running Backrest's API. */
  store: ConfigStore;
  plan: Omit<PlanOptions, "repos" | "modes">;
  /** auto: snapshot plans where a workload's mounts are all on btrfs (with `plan.socket`); off. */
  snapshot: SnapshotMode;
  dryRun: boolean;
  keepOrphans: boolean;
  /** Only containers that also carry these labels (`key` or `key=value`): one sidecar per stack. */
  onlyLabels: readonly string[];
  /** How often a write refused for a stale modno is tried again (read, merged, written anew). */
  conflictAttempts?: number;
  /** Stops further attempts after a conflict (the daemon's SIGTERM); the call under way finishes. */
  signal?: AbortSignal;
  /** Log the plans that did not change at debug level (the daemon: an event changes one plan of many). */
  quietUnchanged?: boolean;
  /** Where the labelled containers come from: the engine listed whole unless given (the daemon keeps them by events). */
  workloads?: () => Promise<Workload[]>;
}

/** The label filter that picks a reconcile's containers. */
export const enabledLabels = (options: Pick<ReconcileOptions, "onlyLabels">) => [
  `${LABEL.enable}=true`,
  ...options.onlyLabels,
];

/** The seed's exit codes: 0 written, 2 nothing to write (or a dry run), 3 some containers failed. */
export interface ReconcileResult {
  status: 0 | 2 | 3;
  plansSeen: number;
  plansChanged: number;
  plansRemoved: number;
  errors: number;
  skipped: number;
}

const CONFLICT_ATTEMPTS = 5;

/** What one reconcile would do to one config: the merged config and what changed in it. */
export interface Change {
  set: PlanSet;
  merged: MergeResult;
  changedIds: string[];
  /** The config differs from what it was: there is something to write. */
  differs: boolean;
}

/** Plans for these workloads, merged into this config; refused when Backrest would refuse the result. */
export function changeFor(
  config: LoadedConfig,
  where: string,
  workloads: readonly Workload[],
  options: Pick<ReconcileOptions, "plan" | "keepOrphans"> & { modes: ReadonlyMap<string, WorkloadMode> },
  warn: (planId: string, message: string) => void = () => {},
): Change {
  const broken = foreignProblems(config, options.plan.prefix);
  if (broken.length > 0)
    throw new ConfigError(
      `${where} is already a config Backrest refuses to load (${broken.join("; ")}); not touching it`,
    );
  // The seed's own format has no hooks by condition and no backup flags: its plans stay live.
  const modes = config.format === "backrest" ? options.modes : undefined;
  const set = buildPlans(workloads, { ...options.plan, repos: repoIds(config), modes });
  const untouched = new Set([...set.errors, ...set.skipped].map((p) => p.planId));
  const desired = new Map([...set.plans].map(([id, entry]) => [id, entry.plan]));
  const merged = mergePlans(config, desired, {
    prefix: options.plan.prefix,
    untouched,
    keepOrphans: options.keepOrphans,
    warn,
  });
  // The whole config as Backrest will load it: never written when Backrest would refuse it.
  const refusedAll = config.format === "backrest" ? configProblems(merged.data) : [];
  if (refusedAll.length > 0)
    throw new ConfigError(
      `the config would not load in Backrest (${refusedAll.join("; ")}); ${where} left as it is`,
    );
  const plansOf = (data: Json) =>
    new Map(((data.plans as Json[] | undefined) ?? []).map((p) => [String(p.id), canonical(p)]));
  const before = plansOf(config.data);
  const after = plansOf(merged.data);
  const changedIds = merged.upserted.filter((id) => before.get(id) !== after.get(id));
  return { set, merged, changedIds, differs: canonical(merged.data) !== canonical(config.data) };
}

/** Each workload's mode, as reconcile and status decide it. */
export function workloadModes(
  docker: Docker,
  workloads: readonly Workload[],
  options: Pick<ReconcileOptions, "plan" | "snapshot">,
): Promise<Map<string, WorkloadMode>> {
  return planModes(docker, workloads, {
    socket: options.plan.socket,
    snapshot: options.snapshot,
    excludeBindMounts: options.plan.excludeBindMounts,
    volumePrefix: options.plan.volumePrefix,
  });
}

/** One read-merge-write; a ConfigConflictError from the store means: read again and retry. */
async function attempt(
  workloads: readonly Workload[],
  modes: ReadonlyMap<string, WorkloadMode>,
  options: ReconcileOptions,
  log: Logger,
  prefetched?: Promise<LoadedConfig>,
): Promise<{ change: Change; wrote: boolean; timing: Timing }> {
  const { store } = options;
  const began = Date.now();
  const config = await (prefetched ?? store.read());
  const read = Date.now();
  const warnings: Array<{ planId: string; message: string }> = [];
  const change = changeFor(config, store.where, workloads, { ...options, modes }, (planId, message) =>
    warnings.push({ planId, message }),
  );
  const merged = Date.now();
  const wrote = !options.dryRun && change.differs;
  if (wrote) await store.write(change.merged.data, config);
  for (const warning of warnings)
    log.warn({ action: "plan.warning", plan_id: warning.planId }, warning.message);
  return {
    change,
    wrote,
    timing: { read_ms: read - began, merge_ms: merged - read, write_ms: Date.now() - merged },
  };
}

/** Where a reconcile's time went (logged with reconcile.complete): the engine's listing, Backrest's read and write, ours. */
interface Timing {
  list_ms?: number;
  read_ms: number;
  merge_ms: number;
  write_ms: number;
}

function logPlans(change: Change, log: Logger, unchangedAtDebug: boolean): void {
  const { set, merged, changedIds } = change;
  for (const problem of set.warnings)
    log.warn(
      { action: "plan.warning", plan_id: problem.planId, containers: problem.containers },
      problem.message,
    );
  for (const problem of set.skipped)
    log.warn(
      { action: "plan.skipped", plan_id: problem.planId, containers: problem.containers },
      problem.message,
    );
  for (const problem of set.errors)
    log.error(
      { action: "plan.error", plan_id: problem.planId, containers: problem.containers },
      problem.message,
    );
  for (const refused of merged.refused) {
    const containers = set.plans.get(refused.planId)?.containers ?? [];
    log.error({ action: "plan.error", plan_id: refused.planId, containers }, refused.message);
  }
  const refusedIds = new Set(merged.refused.map((r) => r.planId));
  for (const [id, { plan }] of set.plans) {
    if (refusedIds.has(id)) continue;
    const changed = changedIds.includes(id);
    const quiet = !changed && unchangedAtDebug;
    if (quiet && !log.isLevelEnabled("debug")) continue;
    log[quiet ? "debug" : "info"](
      {
        action: "plan.rendered",
        plan_id: id,
        mode: plan.mode ?? "live",
        ...(plan.modeReason ? { mode_reason: plan.modeReason } : {}),
        changed,
        sources: plan.sources,
        ...(plan.exclude ? { exclude: plan.exclude } : {}),
        ...(plan.hooks ? { hooks: plan.hooks } : {}),
        ...(plan.retention ? { retention: plan.retention } : {}),
        ...(plan.notify ? { notify: plan.notify.length } : {}),
        ...(plan.healthchecks ? { healthchecks: true } : {}),
      },
      "plan rendered",
    );
  }
  for (const id of merged.removed)
    log.info({ action: "plan.removed", plan_id: id, changed: true }, "orphaned plan removed");
}

/**
 * One reconcile: labelled containers -> plans -> merged into Backrest's config -> stored only if
 * something changed. Through the API, a write refused because the config changed meanwhile (a UI
 * save, another sidecar) is read, merged and tried again, up to `conflictAttempts` times; then
 * the reconcile ends with status 3 naming the conflict, the config as the other writer left it.
 */
export async function reconcile(
  docker: Docker,
  options: ReconcileOptions,
  log: Logger,
  metrics?: HostMetrics,
): Promise<ReconcileResult> {
  const { store } = options;
  const began = Date.now();
  // Through the API, the config is read while the engine lists (Backrest's modno check keeps the
  // write right); a file is read only under its lock.
  let prefetched = store.kind === "api" ? store.read() : undefined;
  prefetched?.catch(() => {});
  const workloads = await (options.workloads?.() ?? listWorkloads(docker, enabledLabels(options)));
  const modes = await workloadModes(docker, workloads, options);
  const listed = Date.now() - began;
  const attempts = options.conflictAttempts ?? CONFLICT_ATTEMPTS;
  let outcome: { change: Change; wrote: boolean; timing: Timing } | undefined;
  for (let tried = 1; outcome === undefined; tried++) {
    try {
      outcome = await store.exclusive(() => attempt(workloads, modes, options, log, prefetched));
    } catch (error) {
      prefetched = undefined;
      if (!(error instanceof ConfigConflictError)) throw error;
      if (tried >= attempts || options.signal?.aborted) {
        log.error(
          { action: "config.conflict", attempts: tried, config: store.where },
          `${error.message}; gave up after ${tried} attempts, nothing written`,
        );
        metrics?.record({ plansSeen: 0, errors: 1, skipped: 0 }, false);
        return { status: 3, plansSeen: 0, plansChanged: 0, plansRemoved: 0, errors: 1, skipped: 0 };
      }
      log.warn(
        { action: "config.conflict", attempt: tried, config: store.where },
        `${error.message}; merging again`,
      );
      await new Promise((resolve) => setTimeout(resolve, 50 * tried + Math.random() * 100));
    }
  }
  const { change, wrote, timing } = outcome;
  if (wrote)
    log.info(
      { action: "config.written", config: store.where, changed: true, store: store.kind },
      store.kind === "api" ? "config set through Backrest's API" : "config written",
    );
  else if (!options.dryRun)
    log.info(
      { action: "config.unchanged", config: store.where, changed: false },
      "no change; nothing written",
    );
  logPlans(change, log, options.quietUnchanged ?? false);
  const result = {
    plansSeen: change.set.plans.size,
    plansChanged: change.changedIds.length,
    plansRemoved: change.merged.removed.length,
    errors: change.set.errors.length + change.merged.refused.length,
    skipped: change.set.skipped.length,
  };
  metrics?.record(result, wrote);
  if (options.dryRun) {
    log.info(
      {
        action: "dry-run.complete",
        plans_seen: result.plansSeen,
        plans_changed: result.plansChanged + result.plansRemoved,
        config: store.where,
      },
      "dry run: nothing written",
    );
    return { ...result, status: 2 };
  }
  log.info(
    { action: "reconcile.complete", ...snake(result), changed: wrote, ...timing, list_ms: listed },
    "reconcile complete",
  );
  return { ...result, status: result.errors > 0 ? 3 : wrote ? 0 : 2 };
}

function snake(result: Omit<ReconcileResult, "status">): Record<string, number> {
  return {
    plans_seen: result.plansSeen,
    plans_changed: result.plansChanged,
    plans_removed: result.plansRemoved,
    errors: result.errors,
    skipped: result.skipped,
  };
}
