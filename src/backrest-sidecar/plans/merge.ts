import { configProblems, planProblems } from "../backrest/rules.js";
import { type Json, type LoadedConfig, repoIds } from "../backrest/store.js";
import type { SidecarPlan } from "./build.js";
import { toBackrestPlan } from "./render.js";

/** The seed model's key order, for minimal diffs. */
function seedPlan(plan: SidecarPlan): Json {
  return {
    id: plan.id,
    repo: plan.repo,
    schedule: plan.schedule,
    sources: plan.sources,
    ...(plan.exclude ? { exclude: plan.exclude } : {}),
    ...(plan.hooks ? { hooks: plan.hooks } : {}),
    ...(plan.retention ? { retention: plan.retention } : {}),
  };
}

export interface MergeResult {
  data: Json;
  upserted: string[];
  removed: string[];
  /** Plans not written because Backrest would refuse them (their existing plan stays). */
  refused: Array<{ planId: string; message: string }>;
}

/**
 * Upsert our plans by id (whole plan replaced; in Backrest's format the fields we do not own stay),
 * remove our plans whose containers are gone (unless keepOrphans), never touch a plan without our
 * prefix or one whose containers had a problem (`untouched`). Plans: others in their order, then ours by id.
 */
export function mergePlans(
  config: LoadedConfig,
  desired: ReadonlyMap<string, SidecarPlan>,
  options: {
    prefix: string;
    untouched: ReadonlySet<string>;
    keepOrphans: boolean;
    warn: (planId: string, message: string) => void;
  },
): MergeResult {
  const existing = Array.isArray(config.data.plans) ? (config.data.plans as Json[]) : [];
  const byId = new Map(existing.map((plan) => [String(plan.id), plan]));
  const ours = (plan: Json) => typeof plan.id === "string" && plan.id.startsWith(options.prefix);
  const others = existing.filter((plan) => !ours(plan));
  const next = new Map<string, Json>();
  const removed: string[] = [];
  for (const plan of existing.filter(ours)) {
    const id = String(plan.id);
    if (desired.has(id)) continue;
    if (options.untouched.has(id) || options.keepOrphans) next.set(id, plan);
    else removed.push(id);
  }
  const upserted: string[] = [];
  const refused: MergeResult["refused"] = [];
  const repos = new Set(repoIds(config));
  for (const [id, plan] of desired) {
    if (config.format === "seed") {
      next.set(id, seedPlan(plan));
      upserted.push(id);
      continue;
    }
    const rendered = toBackrestPlan(plan, byId.get(id), (message) => options.warn(id, message));
    const problems = planProblems(rendered, repos);
    if (problems.length > 0) {
      refused.push({ planId: id, message: `Backrest would refuse it: ${problems.join("; ")}` });
      const old = byId.get(id);
      if (old) next.set(id, old);
      continue;
    }
    next.set(id, rendered);
    upserted.push(id);
  }
  const plans = [...others, ...[...next.keys()].sort().map((id) => next.get(id) as Json)];
  return { data: { ...config.data, plans }, upserted, removed, refused };
}

/**
 * A Backrest config that Backrest itself would refuse, apart from our own plans (which we replace
 * or remove and check on their own): the sidecar leaves such a file alone.
 */
export function foreignProblems(config: LoadedConfig, prefix: string): string[] {
  if (config.format !== "backrest") return [];
  const plans = Array.isArray(config.data.plans) ? (config.data.plans as Json[]) : [];
  const others = plans.filter((plan) => !(typeof plan?.id === "string" && plan.id.startsWith(prefix)));
  return configProblems({ ...config.data, plans: others });
}
