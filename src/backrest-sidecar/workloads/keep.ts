/** A `backrest.keep` spec: `last=7,daily=7,weekly=4,monthly=12,within=90d`. */
export interface KeepSpec {
  counts: Partial<Record<CountKey, number | "unlimited">>;
  durations: Partial<Record<DurationKey, string>>;
}

export const COUNT_KEYS = ["last", "hourly", "daily", "weekly", "monthly", "yearly"] as const;
export const DURATION_KEYS = [
  "within",
  "within-hourly",
  "within-daily",
  "within-weekly",
  "within-monthly",
  "within-yearly",
] as const;
type CountKey = (typeof COUNT_KEYS)[number];
type DurationKey = (typeof DURATION_KEYS)[number];

/** restic's duration for --keep-within*: <int><unit> repeated, units y m d h (no w). */
const DURATION = /^(\d+[ymdh])+$/;

/** Parse and validate; throws an Error whose message names what is wrong (the caller adds where). */
export function parseKeep(spec: string): KeepSpec {
  const result: KeepSpec = { counts: {}, durations: {} };
  const items = spec
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
  if (items.length === 0) throw new Error("keep spec is empty (restic forget needs at least one policy)");
  for (const item of items) {
    const equals = item.indexOf("=");
    if (equals <= 0) throw new Error(`'${item}' is not key=value`);
    const key = item.slice(0, equals).trim();
    const value = item.slice(equals + 1).trim();
    if ((COUNT_KEYS as readonly string[]).includes(key)) {
      if (value !== "unlimited" && !/^\d+$/.test(value)) {
        throw new Error(`${key}=${value}: expected a whole number or 'unlimited'`);
      }
      if (key in result.counts) throw new Error(`${key} given twice`);
      result.counts[key as CountKey] = value === "unlimited" ? "unlimited" : Number(value);
    } else if ((DURATION_KEYS as readonly string[]).includes(key)) {
      if (!DURATION.test(value)) throw new Error(`${key}=${value}: expected a duration like 90d or 1y5m7d2h`);
      if (key in result.durations) throw new Error(`${key} given twice`);
      result.durations[key as DurationKey] = value;
    } else {
      throw new Error(`unknown key '${key}' (known: ${[...COUNT_KEYS, ...DURATION_KEYS].join(", ")})`);
    }
  }
  const counts = Object.values(result.counts);
  if (Object.keys(result.durations).length === 0 && counts.every((count) => count === 0))
    throw new Error("keeps nothing: every count is 0 (Backrest refuses such a policy, restic forget too)");
  return result;
}

/** `restic forget` flags for a spec, in a fixed order. */
export function forgetFlags(spec: KeepSpec): string[] {
  const flags: string[] = [];
  for (const key of COUNT_KEYS) {
    const value = spec.counts[key];
    if (value !== undefined) flags.push(`--keep-${key}`, String(value));
  }
  for (const key of DURATION_KEYS) {
    const value = spec.durations[key];
    if (value !== undefined) flags.push(`--keep-${key}`, value);
  }
  return flags;
}
