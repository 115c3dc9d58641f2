import type { Workload } from "./discover.js";
import { LABEL, splitCsv } from "./labels.js";
import { checkHealthchecksUrl, checkNotifyUrl } from "./notify.js";
import type { RepoDefaults, RepoDefaultsFile } from "./repo-defaults.js";

/** What a workload's plan gets where its labels are silent. */
export interface SettingsDefaults {
  /** `--default-repo`: the repository of a workload without backrest.repo. */
  defaultRepo: string | undefined;
  /** The repositories the config declares (the first is the last resort). */
  repos: readonly string[];
  /** `--repo-defaults`: per repository, what its plans get. */
  repoDefaults?: RepoDefaultsFile | undefined;
  defaultSchedule: string;
  defaultRetention: string;
}

/** A value and where it came from, as the start of a message about it. */
export interface Setting {
  value: string;
  source: string;
}

/** A workload's settings: labels first, then its repository's defaults, then the flags' defaults. */
export interface WorkloadSettings {
  repo: string;
  schedule: Setting;
  keep: Setting;
  pre: string[];
  post: string[];
  notify: string[];
  healthchecks: string | undefined;
  /** Notification targets that are not URLs, named with label and container (and left out). */
  problems: string[];
}

function pick(
  workload: Workload,
  label: string,
  fromRepo: string | undefined,
  repoSource: string,
  fallback: Setting,
): Setting {
  const value = workload.labels[label]?.trim();
  if (value) return { value, source: `label ${label}=${value} on container ${workload.name}` };
  if (fromRepo !== undefined) return { value: fromRepo, source: `${repoSource} ${fromRepo}` };
  return fallback;
}

export function workloadSettings(workload: Workload, defaults: SettingsDefaults): WorkloadSettings {
  const labels = workload.labels;
  const repo = labels[LABEL.repo]?.trim() || defaults.defaultRepo || defaults.repos[0] || "default";
  const own: RepoDefaults = defaults.repoDefaults?.repos.get(repo) ?? {};
  const where = (key: string) => `--repo-defaults ${defaults.repoDefaults?.file} (repository ${repo}) ${key}`;
  const schedule = pick(workload, LABEL.schedule, own.schedule, where("schedule"), {
    value: defaults.defaultSchedule,
    source: `--default-schedule ${defaults.defaultSchedule}`,
  });
  const keep = pick(workload, LABEL.keep, own.keep, where("keep"), {
    value: defaults.defaultRetention,
    source: `--default-retention ${defaults.defaultRetention} (for container ${workload.name})`,
  });
  const commands = (label: string, fromRepo: string[] | undefined) =>
    labels[label] !== undefined ? splitCsv(labels[label]) : (fromRepo ?? []);
  const problems: string[] = [];
  const valid = (label: string, check: (url: string) => string | undefined) => (url: string) => {
    const problem = check(url);
    if (problem) problems.push(`label ${label} on container ${workload.name}: ${problem}`);
    return problem === undefined;
  };
  const notify = (
    labels[LABEL.notify] !== undefined ? splitCsv(labels[LABEL.notify]) : (own.notify ?? [])
  ).filter(valid(LABEL.notify, checkNotifyUrl));
  const healthchecks = [labels[LABEL.healthchecks]?.trim() || own.healthchecks]
    .filter((url): url is string => url !== undefined)
    .find(valid(LABEL.healthchecks, checkHealthchecksUrl));
  return {
    problems,
    repo,
    schedule,
    keep,
    pre: commands(LABEL.pre, own.hooks?.pre),
    post: commands(LABEL.post, own.hooks?.post),
    notify,
    healthchecks,
  };
}
