import { constants } from "node:fs";
import { access } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import { engineCall } from "../system/docker.js";
import { ConfigError } from "../system/errors.js";
import { run } from "../system/exec.js";
import { withLock } from "../system/lock.js";
import type { Logger } from "../system/log.js";
import { configProblems } from "./backrest-rules.js";
import {
  canonical,
  foreignProblems,
  loadConfig,
  mergePlans,
  render,
  repoIds,
  writeConfig,
} from "./config-file.js";
import { LABEL } from "./labels.js";
import type { SidecarMetrics } from "./metrics.js";
import { buildPlans, type PlanOptions } from "./plans.js";
import { listWorkloads } from "./workloads.js";

export interface ReconcileOptions {
  config: string;
  plan: Omit<PlanOptions, "repos">;
  dryRun: boolean;
  apply: boolean;
  backrestContainer: string;
  reloadCmd: string | undefined;
  keepOrphans: boolean;
  /** Only containers that also carry these labels (`key` or `key=value`): one sidecar per stack. */
  onlyLabels: readonly string[];
}

/** The seed's exit codes: 0 written, 2 nothing to write (or a dry run), 3 some containers failed. */
export interface ReconcileResult {
  status: 0 | 2 | 3;
  plansSeen: number;
  plansChanged: number;
  plansRemoved: number;
  errors: number;
  skipped: number;
}

/** Restart Backrest (it does not watch its file), or run --reload-cmd instead. */
async function applyChange(docker: Docker, options: ReconcileOptions, log: Logger): Promise<void> {
  if (options.reloadCmd) {
    await run("sh", ["-c", options.reloadCmd]);
    log.info({ action: "apply.reload", command: options.reloadCmd }, "reload command ran");
    return;
  }
  await engineCall(docker, `restart container ${options.backrestContainer}`, () =>
    docker.getContainer(options.backrestContainer).restart(),
  );
  log.info({ action: "apply.restart", container: options.backrestContainer }, "Backrest restarted");
}

/**
 * One reconcile: labelled containers -> plans -> merged into the config -> written only if
 * something changed (atomically, under a lock, re-read under it) -> Backrest applied on --apply.
 */
export async function reconcile(
  docker: Docker,
  options: ReconcileOptions,
  log: Logger,
  metrics?: SidecarMetrics,
): Promise<ReconcileResult> {
  const workloads = await listWorkloads(docker, [`${LABEL.enable}=true`, ...options.onlyLabels]);
  const work = async (): Promise<ReconcileResult> => {
    const config = await loadConfig(options.config);
    const broken = foreignProblems(config, options.plan.prefix);
    if (broken.length > 0) {
      throw new ConfigError(
        `${options.config} is already a config Backrest refuses to load (${broken.join("; ")}); not touching it`,
      );
    }
    const set = buildPlans(workloads, { ...options.plan, repos: repoIds(config) });
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
    const untouched = new Set([...set.errors, ...set.skipped].map((p) => p.planId));
    const desired = new Map([...set.plans].map(([id, entry]) => [id, entry.plan]));
    const merged = mergePlans(config, desired, {
      prefix: options.plan.prefix,
      untouched,
      keepOrphans: options.keepOrphans,
      warn: (planId, message) => log.warn({ action: "plan.warning", plan_id: planId }, message),
    });
    for (const refused of merged.refused) {
      const containers = set.plans.get(refused.planId)?.containers ?? [];
      log.error({ action: "plan.error", plan_id: refused.planId, containers }, refused.message);
    }
    const errors = set.errors.length + merged.refused.length;
    // The whole file as Backrest will load it: never written when Backrest would refuse it.
    const refusedAll = config.format === "backrest" ? configProblems(merged.data) : [];
    if (refusedAll.length > 0) {
      throw new ConfigError(
        `the config would not load in Backrest (${refusedAll.join("; ")}); ${options.config} left as it is`,
      );
    }
    const before = new Map(
      ((config.data.plans as Array<Record<string, unknown>>) ?? []).map((p) => [String(p.id), canonical(p)]),
    );
    const after = new Map(
      ((merged.data.plans as Array<Record<string, unknown>>) ?? []).map((p) => [String(p.id), canonical(p)]),
    );
    const changedIds = merged.upserted.filter((id) => before.get(id) !== after.get(id));
    const refusedIds = new Set(merged.refused.map((r) => r.planId));
    const wrote = !options.dryRun && canonical(merged.data) !== canonical(config.data);
    for (const [id, entry] of set.plans) {
      if (refusedIds.has(id)) continue;
      const plan = entry.plan;
      log.info(
        {
          action: "plan.rendered",
          plan_id: id,
          changed: changedIds.includes(id),
          sources: plan.sources,
          ...(plan.exclude ? { exclude: plan.exclude } : {}),
          ...(plan.hooks ? { hooks: plan.hooks } : {}),
          ...(plan.retention ? { retention: plan.retention } : {}),
        },
        "plan rendered",
      );
    }
    for (const id of merged.removed)
      log.info({ action: "plan.removed", plan_id: id, changed: true }, "orphaned plan removed");
    const result = {
      plansSeen: set.plans.size,
      plansChanged: changedIds.length,
      plansRemoved: merged.removed.length,
      errors,
      skipped: set.skipped.length,
    };
    metrics?.record(result, wrote);
    if (options.dryRun) {
      log.info(
        {
          action: "dry-run.complete",
          plans_seen: result.plansSeen,
          plans_changed: result.plansChanged + result.plansRemoved,
          config: options.config,
        },
        "dry run: nothing written",
      );
      return { ...result, status: 2 };
    }
    if (wrote) {
      const data =
        config.format === "backrest"
          ? { ...merged.data, modno: Number(merged.data.modno ?? 0) + 1 }
          : merged.data;
      await writeConfig(config, render(data));
      log.info(
        { action: "config.written", config: options.config, changed: true, format: config.format },
        "config written",
      );
      if (options.apply) await applyChange(docker, options, log);
    } else {
      log.info(
        { action: "config.unchanged", config: options.config, changed: false },
        "no change; nothing written",
      );
    }
    log.info({ action: "reconcile.complete", ...snake(result), changed: wrote }, "reconcile complete");
    return { ...result, status: result.errors > 0 ? 3 : wrote ? 0 : 2 };
  };
  if (options.dryRun) return work();
  // A directory we cannot write (a read-only mount) is an error now, not a lock timeout later.
  try {
    await access(path.dirname(options.config), constants.W_OK);
  } catch (error) {
    throw new ConfigError(
      `cannot write in ${path.dirname(options.config)}: ${(error as Error).message}; config left as it is`,
    );
  }
  return withLock(`${options.config}.lock`, work, { timeoutMs: 60_000, pidFile: true });
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
