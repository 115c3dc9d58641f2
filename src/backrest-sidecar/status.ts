import type Docker from "dockerode";
import { loadConfig, mergePlans, repoIds } from "./config-file.js";
import { buildPlans } from "./plans.js";
import type { ReconcileOptions } from "./reconcile.js";
import { listWorkloads } from "./workloads.js";

export interface StatusRow {
  container: string;
  planId: string;
  state: "planned" | "skipped" | "error";
  reason?: string;
}

/** `backrest-sidecar status`: what reconcile would do for each labelled container, and why. */
export async function sidecarStatus(docker: Docker, options: ReconcileOptions): Promise<StatusRow[]> {
  const config = await loadConfig(options.config);
  const set = buildPlans(await listWorkloads(docker, ["backrest.enable=true", ...options.onlyLabels]), {
    ...options.plan,
    repos: repoIds(config),
  });
  // Rendered as reconcile would write them: a plan Backrest would refuse is an error here too.
  const merged = mergePlans(config, new Map([...set.plans].map(([id, entry]) => [id, entry.plan])), {
    prefix: options.plan.prefix,
    untouched: new Set(),
    keepOrphans: true,
    warn: () => {},
  });
  const refused = new Map(merged.refused.map((r) => [r.planId, r.message]));
  const rows: StatusRow[] = [];
  for (const [planId, entry] of set.plans) {
    const reason = refused.get(planId);
    for (const container of entry.containers)
      rows.push({ container, planId, state: reason ? "error" : "planned", ...(reason ? { reason } : {}) });
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
        `${r.container.padEnd(width)}  ${r.planId.padEnd(idWidth)}  ${r.state}${r.reason ? `: ${r.reason}` : ""}`,
    )
    .join("\n");
}
