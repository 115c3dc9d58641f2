/**
 * restic's retention policy (`restic forget --keep-*`), shared by every tool that asks restic to
 * forget: the count keys (N or `unlimited`), the duration keys (`--keep-within*`, a duration such as
 * `90d` or `1y5m7d2h`, measured back from the latest snapshot), and the flags in one fixed order.
 */
export const KEEP_COUNTS = ["last", "hourly", "daily", "weekly", "monthly", "yearly"] as const;
export const KEEP_WITHINS = [
  "within",
  "within-hourly",
  "within-daily",
  "within-weekly",
  "within-monthly",
  "within-yearly",
] as const;

export type KeepCount = (typeof KEEP_COUNTS)[number];
export type KeepWithin = (typeof KEEP_WITHINS)[number];

/** restic's duration for --keep-within*: <int><unit> repeated, units y m d h (no w). */
export const RESTIC_DURATION = /^(\d+[ymdh])+$/;

export type KeepPolicy = Partial<Record<KeepCount, number | "unlimited">> &
  Partial<Record<KeepWithin, string>> & { tag?: readonly string[] };

/** `restic forget` flags for a policy: counts, then durations, then tags. */
export function forgetFlags(policy: KeepPolicy): string[] {
  const flags: string[] = [];
  for (const key of [...KEEP_COUNTS, ...KEEP_WITHINS]) {
    const value = policy[key];
    if (value !== undefined) flags.push(`--keep-${key}`, String(value));
  }
  for (const tag of policy.tag ?? []) flags.push("--keep-tag", tag);
  return flags;
}
