/**
 * What Backrest v1.14.1 checks when it loads its config (internal/config: parse, migrate,
 * validate), encoded from its rules so that the sidecar never writes a file Backrest refuses to
 * start with, and never builds on one it already refuses. Each problem is a sentence naming the
 * field and the rule. Multi-host keys (`multihost`) are left to Backrest itself.
 */
import { backrestCron } from "./cron.js";

type Json = Record<string, unknown>;

/** The config version this Backrest writes; 2-5 are migrated, 1 and 0 (or none) refused. */
export const BACKREST_CONFIG_VERSION = 6;
const INSTANCE_ID_MAX = 50;

const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Backrest's id rule (validationutil.ValidateID): not empty, not `_..._` (reserved), length. */
export function idProblem(id: unknown, maxLength = 0): string | undefined {
  if (typeof id !== "string") return "must be a string";
  if (id === "") return "must not be empty";
  if (id.startsWith("_") && id.endsWith("_"))
    return "starts and ends with '_', which Backrest reserves for itself";
  if (maxLength > 0 && id.length > maxLength) return `is longer than ${maxLength} characters`;
  return undefined;
}

function scheduleProblems(schedule: unknown, where: string): string[] {
  if (schedule === undefined) return [];
  if (!isObject(schedule)) return [`${where}: must be an object`];
  const kinds = ["disabled", "cron", "maxFrequencyDays", "maxFrequencyHours"].filter(
    (k) => schedule[k] !== undefined,
  );
  if (kinds.length > 1) return [`${where}: sets ${kinds.join(" and ")}; a schedule is exactly one of them`];
  if ("cron" in schedule) {
    if (typeof schedule.cron !== "string" || schedule.cron === "")
      return [`${where}.cron: must be a non-empty string`];
    try {
      const parsed = backrestCron(schedule.cron);
      if (parsed.translated)
        return [
          `${where}.cron '${schedule.cron}': Backrest does not take it as written (${parsed.translated})`,
        ];
    } catch (error) {
      return [`${where}.cron: ${(error as Error).message}`];
    }
  }
  for (const key of ["maxFrequencyDays", "maxFrequencyHours"]) {
    if (key in schedule && !(Number.isInteger(Number(schedule[key])) && Number(schedule[key]) >= 1))
      return [`${where}.${key}: must be at least 1`];
  }
  if ("disabled" in schedule && schedule.disabled !== true)
    return [`${where}.disabled: must be true when set`];
  return [];
}

const BUCKETS = ["hourly", "daily", "weekly", "monthly", "yearly", "keepLastN"];

function retentionProblems(retention: unknown, where: string): string[] {
  if (retention === undefined) return [];
  if (!isObject(retention)) return [`${where}: must be an object`];
  const policies = ["policyKeepLastN", "policyTimeBucketed", "policyKeepAll"].filter(
    (k) => retention[k] !== undefined,
  );
  if (policies.length !== 1) return [`${where}: must hold exactly one policy (it has ${policies.length})`];
  const bucketed = retention.policyTimeBucketed;
  if (bucketed !== undefined) {
    if (!isObject(bucketed)) return [`${where}.policyTimeBucketed: must be an object`];
    if (BUCKETS.every((key) => !Number(bucketed[key] ?? 0)))
      return [
        `${where}.policyTimeBucketed: keeps nothing (every bucket 0); Backrest refuses an empty bucketed policy`,
      ];
  }
  return [];
}

function stringList(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((item) => typeof item !== "string"))
    return [`${where}: must be a list of strings`];
  return [];
}

/** The problems Backrest would refuse one plan for (`repos`: the ids the config declares). */
export function planProblems(plan: Json, repos: ReadonlySet<string>): string[] {
  const id = typeof plan.id === "string" ? plan.id : "?";
  const at = `plan ${id}`;
  const problems: string[] = [];
  const idIssue = idProblem(plan.id);
  if (idIssue) problems.push(`${at}: id ${idIssue}`);
  problems.push(...stringList(plan.paths, `${at}: paths`), ...stringList(plan.excludes, `${at}: excludes`));
  const paths = Array.isArray(plan.paths) ? plan.paths : [];
  const flags = Array.isArray(plan.backup_flags) ? plan.backup_flags : [];
  if (paths.length === 0 && flags.length === 0) problems.push(`${at}: needs at least one path`);
  if (paths.some((p) => p === "")) problems.push(`${at}: has an empty path`);
  if (typeof plan.repo !== "string" || plan.repo === "") problems.push(`${at}: repo is required`);
  else if (!repos.has(plan.repo)) problems.push(`${at}: repo '${plan.repo}' is not in the config`);
  problems.push(...scheduleProblems(plan.schedule, `${at}: schedule`));
  problems.push(...retentionProblems(plan.retention, `${at}: retention`));
  if (plan.hooks !== undefined && !Array.isArray(plan.hooks)) problems.push(`${at}: hooks must be a list`);
  return problems;
}

function repoProblems(repo: Json): string[] {
  const id = typeof repo.id === "string" ? repo.id : "?";
  const at = `repo ${id}`;
  const problems: string[] = [];
  const idIssue = idProblem(repo.id);
  if (idIssue) problems.push(`${at}: id ${idIssue}`);
  if (typeof repo.uri !== "string" || repo.uri === "") problems.push(`${at}: uri is required`);
  const guid = repo.guid;
  if (guid !== undefined && guid !== "") {
    if (repo.autoInitialize === true)
      problems.push(`${at}: has a guid and autoInitialize (one or the other)`);
    if (typeof guid !== "string" || guid.length !== 64) problems.push(`${at}: guid must be 64 characters`);
  } else if (repo.autoInitialize !== true) {
    problems.push(`${at}: needs a guid (64 hex) or autoInitialize: true`);
  }
  if (repo.env !== undefined) {
    if (!Array.isArray(repo.env)) problems.push(`${at}: env must be a list of "KEY=VALUE" strings`);
    else
      for (const entry of repo.env)
        if (typeof entry !== "string" || !entry.includes("="))
          problems.push(`${at}: env entry '${String(entry)}' is not KEY=VALUE`);
  }
  for (const policy of ["prunePolicy", "checkPolicy", "forgetPolicy"]) {
    const value = repo[policy];
    if (isObject(value)) problems.push(...scheduleProblems(value.schedule, `${at}: ${policy}.schedule`));
  }
  return problems;
}

/**
 * Every reason Backrest would refuse to start with this config (its protojson form), beyond the
 * plans the sidecar is about to write. Empty: Backrest loads it.
 */
export function configProblems(data: Json): string[] {
  const problems: string[] = [];
  const version = Number(data.version ?? 0);
  if (!Number.isInteger(version) || version === 0)
    problems.push("version: missing or 0 ('config version 0 is invalid')");
  else if (version === 1) problems.push("version 1 is too old for Backrest to migrate");
  if (data.instance !== undefined && data.instance !== "") {
    const issue = idProblem(data.instance, INSTANCE_ID_MAX);
    if (issue) problems.push(`instance id ${issue}`);
  }
  const auth = data.auth;
  if (auth !== undefined) {
    if (!isObject(auth)) problems.push("auth: must be an object");
    else if (auth.disabled !== true) {
      const users = Array.isArray(auth.users) ? (auth.users as unknown[]) : [];
      if (users.length === 0) problems.push("auth: enabled but no users");
      for (const user of users.filter(isObject)) {
        const issue = idProblem(user.name);
        if (issue) problems.push(`auth user ${String(user.name)}: name ${issue}`);
        if (!user.passwordBcrypt) problems.push(`auth user ${String(user.name)}: needs passwordBcrypt`);
      }
    }
  }
  const repos = Array.isArray(data.repos) ? (data.repos as unknown[]) : [];
  const repoIds = new Set<string>();
  for (const repo of repos) {
    if (!isObject(repo)) {
      problems.push("repos: every entry must be an object");
      continue;
    }
    problems.push(...repoProblems(repo));
    if (typeof repo.id === "string") {
      if (repoIds.has(repo.id)) problems.push(`repo ${repo.id}: duplicate id`);
      repoIds.add(repo.id);
    }
  }
  const planIds = new Set<string>();
  for (const plan of Array.isArray(data.plans) ? (data.plans as unknown[]) : []) {
    if (!isObject(plan)) {
      problems.push("plans: every entry must be an object");
      continue;
    }
    problems.push(...planProblems(plan, repoIds));
    if (typeof plan.id === "string") {
      if (planIds.has(plan.id)) problems.push(`plan ${plan.id}: duplicate id`);
      planIds.add(plan.id);
    }
  }
  return problems;
}
