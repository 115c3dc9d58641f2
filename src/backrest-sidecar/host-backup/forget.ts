import { ConfigError } from "../../system/errors.js";
import { ExecError, run as exec } from "../../system/exec.js";
import type { Logger } from "../../system/log.js";
import type { Workload } from "../workloads/discover.js";
import { forgetFlags, parseKeep } from "../workloads/keep.js";
import { LABEL } from "../workloads/labels.js";
import { backedUp, dumped, dumpPath, workloadPrefix } from "../workloads/layout.js";
import { type SettingsDefaults, workloadSettings } from "../workloads/settings.js";
import { type ResticContext, resticOptions } from "./restic.js";
import type { RunState } from "./run-state.js";

export interface ForgetPlan {
  workload: Workload;
  flags: string[];
  /** The snapshot paths its history is kept by: the volumes folder and/or the dump. */
  paths: string[];
}

/**
 * The `restic forget` of each workload: its backrest.keep, else --default-retention for a workload
 * this run backs up or dumps (the same default its Backrest plan gets), over its volumes folder and
 * its dump. Every spec is checked up front: a bad one stops the run before anything is stopped.
 */
export function forgetPlans(
  workloads: readonly Workload[],
  options: {
    settings: SettingsDefaults;
    volumesRoot: string;
    includeProject: boolean;
    excludeBindMounts: boolean;
  },
): ForgetPlan[] {
  const volumes = new Set(backedUp(workloads, options));
  const dumps = new Set(dumped(workloads));
  const plans: ForgetPlan[] = [];
  for (const workload of workloads) {
    const saved = volumes.has(workload) || dumps.has(workload);
    if (!saved && !workload.labels[LABEL.keep]?.trim()) continue;
    const keep = workloadSettings(workload, options.settings).keep;
    let flags: string[];
    try {
      flags = forgetFlags(parseKeep(keep.value));
    } catch (error) {
      throw new ConfigError(`${keep.source}: ${(error as Error).message}`);
    }
    const paths = [
      ...(volumes.has(workload) || !dumps.has(workload)
        ? [workloadPrefix(workload, options.volumesRoot, options.includeProject)]
        : []),
      ...(dumps.has(workload) ? [dumpPath(workload, options.includeProject)] : []),
    ];
    plans.push({ workload, flags, paths });
  }
  return plans;
}

/** `restic forget --prune` per workload and path, by its keep spec. */
export async function forget(
  plans: readonly ForgetPlan[],
  run: { restic: ResticContext; state: RunState; log: Logger; signal: AbortSignal },
): Promise<void> {
  for (const plan of plans) {
    for (const forgetPath of plan.paths) {
      if (run.signal.aborted) throw run.signal.reason;
      try {
        await exec(
          "restic",
          [
            ...["forget", "--group-by", "paths", "--path", forgetPath, ...plan.flags, "--prune"],
            ...(run.restic.lockFlags ?? []),
          ],
          resticOptions(run.restic),
        );
        run.log.info({ action: "forget", path: forgetPath, flags: plan.flags }, "forgot per keep spec");
      } catch (error) {
        if (!(error instanceof ExecError)) throw error;
        run.log.error({ action: "forget.failed", path: forgetPath, err: error.message }, "forget failed");
        run.state.fail(plan.workload, `forget: ${error.message}`);
      }
    }
  }
}
