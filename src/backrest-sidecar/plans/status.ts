import type Docker from "dockerode";
import { listWorkloads } from "../workloads/discover.js";
import type { PlanMode } from "./modes.js";
import { changeFor, enabledLabels, type ReconcileOptions, workloadModes } from "./reconcile.js";

export interface StatusRow {
  container: string;
  planId: string;
  state: "planned" | "skipped" | "error";
  /** How Backrest backs it up: snapshot, dump or live. */
  mode?: PlanMode;
  reason?: string;
}

/**
 * `backrest-sidecar status`: what reconcile would do for each labelled container, and why, against
 * the config as it is now (Backrest's file, or the live one through its API).
 */
export async function sidecarStatus(docker: Docker, options: ReconcileOptions): Promise<StatusRow[]> {
  const config = await options.store.read();
  const workloads = await listWorkloads(docker, enabledLabels(options));
  // Rendered as reconcile would write them: a plan Backrest would refuse is an error here too.
  const modes = await workloadModes(docker, workloads, options);
  const { set, merged } = changeFor(config, options.store.where, workloads, {
    ...options,
    modes,
    keepOrphans: true,
  });
  const refused = new Map(merged.refused.map((r) => [r.planId, r.message]));
  const rows: StatusRow[] = [];
  for (const [planId, entry] of set.plans) {
    const reason = refused.get(planId) ?? entry.plan.modeReason;
    const state = refused.has(planId) ? "error" : "planned";
    for (const container of entry.containers)
      rows.push({ container, planId, state, mode: entry.plan.mode ?? "live", ...(reason ? { reason } : {}) });
  }
  for (const problem of set.skipped)
    for (const container of problem.containers)
      rows.push({ container, planId: problem.planId, state: "skipped", reason: problem.message });
  for (const problem of set.errors)
    for (const container of problem.containers)
      rows.push({ container, planId: problem.planId, state: "error", reason: problem.message });
  return rows.sort((a, b) => (a.container < b.container ? -1 : 1));
}

export function formatStatus(rows: readonly StatusRow[]): string {
  if (rows.length === 0) return "no container has backrest.enable=true";
  const width = Math.max(...rows.map((r) => r.container.length));
  const idWidth = Math.max(...rows.map((r) => r.planId.length));
  return rows
    .map(
      (r) =>
        `${r.container.padEnd(width)}  ${r.planId.padEnd(idWidth)}  ${r.state}${r.mode ? ` (${r.mode})` : ""}${r.reason ? `: ${r.reason}` : ""}`,
    )
    .join("\n");
}
