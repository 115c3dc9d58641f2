import { parseKeep } from "./keep.js";
import type { SidecarPlan } from "./plans.js";

/** The plan fields the sidecar owns in Backrest's own config; any other field of a plan is kept. */
export const MANAGED_KEYS = ["id", "repo", "paths", "excludes", "schedule", "retention", "hooks"] as const;

type Json = Record<string, unknown>;

/**
 * Backrest's retention from a keep spec: only `last` -> policyKeepLastN, else policyTimeBucketed.
 * `within*` and `unlimited` have no Backrest equivalent: warned about and left out (the sidecar's
 * own forget in backup-once still applies them).
 */
export function backrestRetention(spec: string, warn: (message: string) => void): Json | undefined {
  const keep = parseKeep(spec);
  for (const key of Object.keys(keep.durations))
    warn(`keep ${key} has no Backrest retention equivalent; left out of the plan`);
  // Zero counts are left out, as Backrest writes them (protojson drops zero values): the plan
  // then reads back from Backrest's own rewrite exactly as we wrote it.
  const counts: Record<string, number> = {};
  for (const [key, value] of Object.entries(keep.counts)) {
    if (value === "unlimited")
      warn(`keep ${key}=unlimited has no Backrest retention equivalent; left out of the plan`);
    else if (value !== 0) counts[key] = value;
  }
  const buckets = ["hourly", "daily", "weekly", "monthly", "yearly"].filter(
    (key) => counts[key] !== undefined,
  );
  if (buckets.length === 0 && counts.last !== undefined) return { policyKeepLastN: counts.last };
  if (buckets.length === 0) return undefined;
  const policy: Json = {};
  for (const key of buckets) policy[key] = counts[key];
  if (counts.last !== undefined) policy.keepLastN = counts.last;
  return { policyTimeBucketed: policy };
}

/** Our plan in Backrest's protojson shape, over the existing plan (unmanaged fields kept). */
export function toBackrestPlan(
  plan: SidecarPlan,
  existing: Json | undefined,
  warn: (message: string) => void,
): Json {
  const kept: Json = {};
  for (const [key, value] of Object.entries(existing ?? {})) {
    if (!(MANAGED_KEYS as readonly string[]).includes(key)) kept[key] = value;
  }
  const hooks = [
    ...(plan.hooks?.pre ?? []).map((command) => ({
      conditions: ["CONDITION_SNAPSHOT_START"],
      actionCommand: { command },
      onError: "ON_ERROR_FATAL",
    })),
    ...(plan.hooks?.post ?? []).map((command) => ({
      conditions: ["CONDITION_SNAPSHOT_END"],
      actionCommand: { command },
    })),
  ];
  const retention = plan.retention ? backrestRetention(plan.retention.spec, warn) : undefined;
  return {
    id: plan.id,
    repo: plan.repo,
    paths: plan.sources,
    ...(plan.exclude ? { excludes: plan.exclude } : {}),
    schedule: { cron: plan.schedule, clock: "CLOCK_LOCAL" },
    ...(retention ? { retention } : {}),
    ...(hooks.length > 0 ? { hooks } : {}),
    ...kept,
  };
}
