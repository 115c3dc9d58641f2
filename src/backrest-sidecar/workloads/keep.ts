import {
  KEEP_COUNTS,
  KEEP_WITHINS,
  type KeepCount,
  type KeepWithin,
  RESTIC_DURATION,
  forgetFlags as resticForgetFlags,
} from "../../restic/keep.js";

/** A `backrest.keep` spec: `last=7,daily=7,weekly=4,monthly=12,within=90d`. */
export interface KeepSpec {
  counts: Partial<Record<KeepCount, number | "unlimited">>;
  durations: Partial<Record<KeepWithin, string>>;
}

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
    if ((KEEP_COUNTS as readonly string[]).includes(key)) {
      if (value !== "unlimited" && !/^\d+$/.test(value)) {
        throw new Error(`${key}=${value}: expected a whole number or 'unlimited'`);
      }
      if (key in result.counts) throw new Error(`${key} given twice`);
      result.counts[key as KeepCount] = value === "unlimited" ? "unlimited" : Number(value);
    } else if ((KEEP_WITHINS as readonly string[]).includes(key)) {
      if (!RESTIC_DURATION.test(value))
        throw new Error(`${key}=${value}: expected a duration like 90d or 1y5m7d2h`);
      if (key in result.durations) throw new Error(`${key} given twice`);
      result.durations[key as KeepWithin] = value;
    } else {
      throw new Error(`unknown key '${key}' (known: ${[...KEEP_COUNTS, ...KEEP_WITHINS].join(", ")})`);
    }
  }
  const counts = Object.values(result.counts);
  if (Object.keys(result.durations).length === 0 && counts.every((count) => count === 0))
    throw new Error("keeps nothing: every count is 0 (Backrest refuses such a policy, restic forget too)");
  return result;
}

/** `restic forget` flags for a spec, in a fixed order. */
export function forgetFlags(spec: KeepSpec): string[] {
  return resticForgetFlags({ ...spec.counts, ...spec.durations });
}
