import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../system/atomic-write.js";
import { ConfigError, isErrno } from "../system/errors.js";
import { toBackrestPlan } from "./backrest-format.js";
import { configProblems, planProblems } from "./backrest-rules.js";
import type { SidecarPlan } from "./plans.js";

type Json = Record<string, unknown>;

/** "seed": the sidecar's own model (repos with url, plans with sources); "backrest": Backrest's protojson. */
export type ConfigFormat = "seed" | "backrest";

export interface LoadedConfig {
  path: string;
  format: ConfigFormat;
  data: Json;
  exists: boolean;
}

/** Backrest's file has modno/version, or repos with `uri` (the seed's have `url`). */
export function detectFormat(data: Json): ConfigFormat {
  if ("modno" in data || "version" in data || "instance" in data || "auth" in data) return "backrest";
  const repos = Array.isArray(data.repos) ? (data.repos as Json[]) : [];
  if (repos.some((repo) => typeof repo === "object" && repo !== null && "uri" in repo)) return "backrest";
  const plans = Array.isArray(data.plans) ? (data.plans as Json[]) : [];
  if (plans.some((plan) => typeof plan === "object" && plan !== null && "paths" in plan)) return "backrest";
  return "seed";
}

/** Read the config; a missing file is an empty one; invalid JSON is an error (the file stays untouched). */
export async function loadConfig(file: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if (isErrno(error, "ENOENT"))
      return { path: file, format: "seed", data: { repos: [], plans: [] }, exists: false };
    throw new ConfigError(`cannot read ${file}: ${(error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${file} is not valid JSON (${(error as Error).message}); not touching it`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ConfigError(`${file}: expected a JSON object with repos and plans`);
  }
  const json = data as Json;
  for (const key of ["repos", "plans"]) {
    if (key in json && !Array.isArray(json[key])) throw new ConfigError(`${file}: '${key}' must be a list`);
  }
  return { path: file, format: detectFormat(json), data: json, exists: true };
}

export function repoIds(config: LoadedConfig): string[] {
  const repos = Array.isArray(config.data.repos) ? (config.data.repos as Json[]) : [];
  return repos.map((repo) => repo.id).filter((id): id is string => typeof id === "string");
}

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

/** Key-sorted JSON with plans, repos and path lists compared regardless of order (Backrest sorts them). */
export function canonical(value: unknown, key = ""): string {
  if (Array.isArray(value)) {
    const items = value.map((item) => canonical(item));
    if (["plans", "repos", "paths", "sources", "excludes", "exclude"].includes(key)) items.sort();
    return `[${items.join(",")}]`;
  }
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Json)
      .filter(([k]) => k !== "modno")
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v, k)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function render(data: Json): string {
  return `${JSON.stringify(data, null, 2)}\n`;
}

/**
 * Replace the file atomically: `config.json.new`, fsync, rename, fsync the directory; the owner
 * kept. Backrest's own file keeps its mode (Backrest writes it 0600: it holds repository
 * passwords), and one we create is 0600 for the same reason. A file in the seed's format is 0644,
 * the seed's explicit rule (so the Backrest container and operators can read it). A failure leaves
 * the old file as it was (and no .new behind); the temp file is 0600 until it is complete.
 */
export async function writeConfig(config: LoadedConfig, text: string): Promise<void> {
  const mode = config.format === "seed" ? 0o644 : config.exists ? undefined : 0o600;
  await writeFileAtomic(config.path, text, {
    temp: `${config.path}.new`,
    keepOwnership: true,
    ...(mode !== undefined ? { mode } : {}),
  });
}
