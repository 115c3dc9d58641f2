import { z } from "zod";
import { readStructured } from "../../system/structured-file.js";
import { parseKeep } from "./keep.js";
import { checkHealthchecksUrl, checkNotifyUrl } from "./notify.js";

/** What a repository gives the plans that target it, unless their labels say otherwise. */
export interface RepoDefaults {
  schedule?: string;
  keep?: string;
  hooks?: { pre?: string[]; post?: string[] };
  notify?: string[];
  healthchecks?: string;
}

/** Where a default came from, for messages: `--repo-defaults FILE (repository R)`. */
export interface RepoDefaultsFile {
  file: string;
  repos: ReadonlyMap<string, RepoDefaults>;
}

const commands = z.union([z.string().min(1), z.array(z.string().min(1))]).transform((v) => [v].flat());

const checked = (check: (value: string) => string | undefined) =>
  z.string().superRefine((value, ctx) => {
    const problem = check(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

const keepSpec = z.string().superRefine((spec, ctx) => {
  try {
    parseKeep(spec);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: `keep spec '${spec}': ${(error as Error).message}` });
  }
});

const repoDefaults = z
  .object({
    schedule: z.string().min(1).optional(),
    keep: keepSpec.optional(),
    hooks: z.object({ pre: commands.optional(), post: commands.optional() }).strict().optional(),
    notify: z
      .union([checked(checkNotifyUrl), z.array(checked(checkNotifyUrl))])
      .transform((v) => [v].flat())
      .optional(),
    healthchecks: checked(checkHealthchecksUrl).optional(),
  })
  .strict();

/** Per repository id: `{ "<repo id>": { schedule, keep, hooks: {pre, post}, notify, healthchecks } }`. */
const repoDefaultsFile = z.record(z.string().min(1), repoDefaults);

/**
 * Read `--repo-defaults` (YAML or JSON). Keep specs and URLs are checked here; schedules where
 * plans are made, with Backrest's cron rules.
 */
export async function loadRepoDefaults(file: string): Promise<RepoDefaultsFile> {
  const data = await readStructured(file, "--repo-defaults", repoDefaultsFile);
  return { file, repos: new Map(Object.entries(data)) };
}
