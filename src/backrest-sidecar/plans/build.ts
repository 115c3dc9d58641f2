import path from "node:path";
import { backrestCron, type CronSchedule } from "../backrest/cron.js";
import { selectMounts, type Workload, type WorkloadMount } from "../workloads/discover.js";
import { parseKeep } from "../workloads/keep.js";
import { LABEL, splitCsv } from "../workloads/labels.js";
import { dumpPath, workloadPrefix } from "../workloads/layout.js";
import { workloadPlanId } from "../workloads/plan-id.js";
import type { RepoDefaultsFile } from "../workloads/repo-defaults.js";
import { workloadSettings } from "../workloads/settings.js";
import type { PlanMode, WorkloadMode } from "./modes.js";

/** A plan in the seed's config model (the sidecar's own format). */
export interface SidecarPlan {
  id: string;
  repo: string;
  schedule: string;
  sources: string[];
  exclude?: string[];
  hooks?: { pre?: string[]; post?: string[] };
  retention?: { spec: string };
  /** Notification targets (shoutrrr URLs or http(s) endpoints), told of start, success and error. */
  notify?: string[];
  /** A healthchecks.io check URL: pinged at start, on success and on failure. */
  healthchecks?: string;
  /** How Backrest backs it up (see PlanMode); live when absent. */
  mode?: PlanMode;
  /** Why it is live when it might not be (not on btrfs, --snapshot off, ...). */
  modeReason?: string;
  /** Snapshot and dump plans: the sidecar's endpoint their hooks call. */
  socket?: string;
  /** Dump plans: the file restic stores the dump as, `/databases/[<project>/]<service>/all.sql`. */
  dumpFile?: string;
}

export interface PlanOptions {
  prefix: string;
  includeProject: boolean;
  excludeBindMounts: boolean;
  /** Where named volumes live on the host: `<prefix>/<name>/_data`. */
  volumePrefix: string;
  defaultRepo: string | undefined;
  defaultSchedule: string;
  defaultRetention: string;
  /** `--repo-defaults`: schedule, keep spec, hooks and notifications per repository. */
  repoDefaults?: RepoDefaultsFile | undefined;
  /** Repository ids the config declares. */
  repos: readonly string[];
  /** Each workload's mode by container id (planModes); without it, every plan is live. */
  modes?: ReadonlyMap<string, WorkloadMode> | undefined;
  /** The sidecar's endpoint, for snapshot and dump plans' hooks. */
  socket?: string | undefined;
  /** Where snapshot plans' volumes are read: `<root>/[<project>/]<service>/<destination>`. */
  volumesRoot: string;
}

export interface PlanProblem {
  planId: string;
  containers: string[];
  message: string;
}

export interface PlanSet {
  /** Plans to write, by id. */
  plans: Map<string, { plan: SidecarPlan; containers: string[] }>;
  /** Ids whose containers have a problem: their existing plan (if any) is left as it is. */
  errors: PlanProblem[];
  /** Ids skipped on purpose (unknown repository): their existing plan is left as it is. */
  skipped: PlanProblem[];
  warnings: PlanProblem[];
}

/** The host path of a mount: a bind's source, a named volume's `_data` under the volume prefix. */
export function mountHostPath(mount: WorkloadMount, volumePrefix: string): string | undefined {
  if (mount.type === "bind") return mount.source;
  if (mount.type === "volume" && mount.name) return path.posix.join(volumePrefix, mount.name, "_data");
  return undefined;
}

/** A container path rewritten to the host through the mount it lies in (the deepest one). */
export function hostPathOf(
  containerPath: string,
  mounts: readonly WorkloadMount[],
  volumePrefix: string,
): string | undefined {
  const clean = path.posix.normalize(containerPath).replace(/\/+$/, "") || "/";
  const inside = mounts
    .filter((m) => clean === m.destination || clean.startsWith(`${m.destination.replace(/\/$/, "")}/`))
    .sort((a, b) => b.destination.length - a.destination.length);
  for (const mount of inside) {
    const host = mountHostPath(mount, volumePrefix);
    if (host !== undefined) return path.posix.join(host, path.posix.relative(mount.destination, clean));
  }
  return undefined;
}

interface Draft {
  plan: SidecarPlan;
  project: string | undefined;
  container: string;
  warnings: string[];
}

/** One container's plan, or the reason it has none. */
function draftFor(workload: Workload, options: PlanOptions): Draft | { id: string; error: string } {
  const labels = workload.labels;
  const project = labels[LABEL.project];
  const id = workloadPlanId(workload, options.prefix, options.includeProject);
  const warnings: string[] = [];
  const rewrite = (containerPath: string, what: string) => {
    if (!path.posix.isAbsolute(containerPath))
      throw new Error(`${what} path '${containerPath}' is not absolute`);
    const host = hostPathOf(containerPath, workload.mounts, options.volumePrefix);
    if (host === undefined) {
      warnings.push(`${what} path ${containerPath} is in no mount of ${workload.name}; kept as a host path`);
      return path.posix.normalize(containerPath);
    }
    return host;
  };
  try {
    const mode = options.modes?.get(workload.id) ?? { mode: "live" as const };
    if (mode.error) throw new Error(mode.error);
    const prefix = workloadPrefix(workload, options.volumesRoot, options.includeProject);
    const include = splitCsv(labels[LABEL.include]);
    const sources =
      mode.mode === "snapshot"
        ? [prefix]
        : mode.mode === "dump"
          ? []
          : include.length > 0
            ? include.map((p) => rewrite(p, "backrest.paths.include"))
            : selectMounts(workload, options.excludeBindMounts).flatMap(
                (m) => mountHostPath(m, options.volumePrefix) ?? [],
              );
    if (sources.length === 0 && mode.mode !== "dump") {
      throw new Error(`no sources: no backrest.paths.include and no bind or volume mount to back up`);
    }
    // A snapshot plan reads the mounts at <prefix>/<destination>: a container path keeps its shape.
    const exclude = splitCsv(labels[LABEL.exclude]).map((p) =>
      mode.mode === "snapshot"
        ? path.posix.join(prefix, path.posix.normalize(p))
        : rewrite(p, "backrest.paths.exclude"),
    );
    const settings = workloadSettings(workload, options);
    if (settings.problems.length > 0) throw new Error(settings.problems.join("; "));
    let schedule: CronSchedule;
    try {
      schedule = backrestCron(settings.schedule.value);
    } catch (error) {
      throw new Error(`${settings.schedule.source}: ${(error as Error).message}`);
    }
    if (schedule.translated) warnings.push(`${LABEL.schedule}: ${schedule.translated}`);
    if (schedule.bothDays)
      warnings.push(
        `${LABEL.schedule} '${schedule.cron}' restricts day of month and day of week: Backrest runs it only on days that match both (classic cron: either)`,
      );
    try {
      parseKeep(settings.keep.value);
    } catch (error) {
      throw new Error(`${settings.keep.source}: ${(error as Error).message}`);
    }
    const { pre, post, notify, healthchecks } = settings;
    const plan: SidecarPlan = {
      id,
      repo: settings.repo,
      schedule: schedule.cron,
      sources: [...new Set(sources)].sort(),
      ...(exclude.length > 0 ? { exclude: [...new Set(exclude)].sort() } : {}),
      ...(pre.length > 0 || post.length > 0
        ? { hooks: { ...(pre.length > 0 ? { pre } : {}), ...(post.length > 0 ? { post } : {}) } }
        : {}),
      retention: { spec: settings.keep.value },
      ...(notify.length > 0 ? { notify } : {}),
      ...(healthchecks ? { healthchecks } : {}),
      mode: mode.mode,
      ...(mode.reason ? { modeReason: mode.reason } : {}),
      ...(mode.mode !== "live" && options.socket ? { socket: options.socket } : {}),
      ...(mode.mode === "dump" ? { dumpFile: dumpPath(workload, options.includeProject) } : {}),
    };
    return { plan, project, container: workload.name, warnings };
  } catch (error) {
    return { id, error: (error as Error).message };
  }
}

/**
 * Every labelled container's plan. Replicas of one service share a plan (the union of their
 * sources); two projects landing on one id is an error, never a silent overwrite.
 */
export function buildPlans(workloads: readonly Workload[], options: PlanOptions): PlanSet {
  const result: PlanSet = { plans: new Map(), errors: [], skipped: [], warnings: [] };
  const drafts = new Map<string, Draft[]>();
  const failed = new Map<string, PlanProblem>();
  const byName = [...workloads].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const workload of byName) {
    const draft = draftFor(workload, options);
    if ("error" in draft) {
      const known = failed.get(draft.id);
      if (known) known.containers.push(workload.name);
      else failed.set(draft.id, { planId: draft.id, containers: [workload.name], message: draft.error });
      continue;
    }
    for (const warning of draft.warnings)
      result.warnings.push({ planId: draft.plan.id, containers: [draft.container], message: warning });
    drafts.set(draft.plan.id, [...(drafts.get(draft.plan.id) ?? []), draft]);
  }
  for (const [id, group] of drafts) {
    if (failed.has(id)) continue;
    const projects = [...new Set(group.map((d) => d.project ?? "(none)"))];
    const first = group[0] as Draft;
    const containers = group.map((d) => d.container);
    const modes = [...new Set(group.map((d) => d.plan.mode ?? "live"))];
    if (modes.length > 1) {
      result.errors.push({
        planId: id,
        containers,
        message: `replicas ${containers.join(" and ")} of plan ${id} would be backed up differently (${modes.join(", ")}); give them the same mounts and labels`,
      });
      continue;
    }
    if (projects.length > 1) {
      result.errors.push({
        planId: id,
        containers,
        message: `containers ${containers.join(" and ")} of different projects (${projects.join(", ")}) map to plan ${id}; use --include-project-name`,
      });
      continue;
    }
    if (!options.repos.includes(first.plan.repo)) {
      result.skipped.push({
        planId: id,
        containers,
        message: `repository '${first.plan.repo}' is not in the config; plan skipped (repositories are never created)`,
      });
      continue;
    }
    const plan: SidecarPlan = {
      ...first.plan,
      sources: [...new Set(group.flatMap((d) => d.plan.sources))].sort(),
    };
    const excludes = [...new Set(group.flatMap((d) => d.plan.exclude ?? []))].sort();
    if (excludes.length > 0) plan.exclude = excludes;
    if (first.plan.hooks) {
      // $SELF is written into the hook, so it runs under sh with no SELF set: the container's name
      // (Docker names are [a-zA-Z0-9_.-], safe unquoted), or every replica's for a shared plan.
      const self = containers.join(" ");
      const withSelf = (hooks: string[]) =>
        hooks.map((hook) => hook.replaceAll(/\$\{SELF\}|\$SELF\b/g, self));
      plan.hooks = {
        ...(first.plan.hooks.pre ? { pre: withSelf(first.plan.hooks.pre) } : {}),
        ...(first.plan.hooks.post ? { post: withSelf(first.plan.hooks.post) } : {}),
      };
    }
    result.plans.set(id, { plan, containers });
  }
  for (const problem of failed.values()) result.errors.push(problem);
  return result;
}
