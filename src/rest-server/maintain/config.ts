import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { KEEP_COUNTS, KEEP_WITHINS, RESTIC_DURATION } from "../../restic/keep.js";
import { ConfigError } from "../../system/errors.js";
import { parseDuration } from "../size.js";

const keepSchema = z
  .object({
    ...Object.fromEntries(KEEP_COUNTS.map((key) => [key, z.number().int().min(1).optional()])),
    ...Object.fromEntries(
      KEEP_WITHINS.map((key) => [
        key,
        z.string().regex(RESTIC_DURATION, "a restic duration such as 30d or 1y6m").optional(),
      ]),
    ),
    tag: z.array(z.string().min(1)).optional(),
  })
  .strict()
  .refine(
    (keep) => Object.values(keep).some((value) => value !== undefined),
    "keeps nothing: name at least one policy",
  );

const share = z.union([
  z.number().min(0).max(1),
  z
    .string()
    .regex(/^\d+(\.\d+)?%$/, "a share such as 50%")
    .transform((text) => Number(text.slice(0, -1)) / 100),
]);
const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) ctx.addIssue({ code: "custom", message: "a duration such as 7d, 12h or 1d12h" });
  return ms ?? 0;
});

const repoSchema = z
  .object({
    repo: z.string().min(1),
    "password-file": z.string().min(1),
    keep: keepSchema,
    schedule: duration.optional(),
    "min-age": duration.optional(),
    "max-forget-share": share.optional(),
    "group-by": z.string().optional(),
  })
  .strict();

const configSchema = z
  .object({
    server: z.url().optional(),
    user: z.string().min(1),
    "password-file": z.string().min(1),
    "report-dir": z.string().min(1).optional(),
    "min-age": duration.optional(),
    "max-forget-share": share.optional(),
    repos: z.array(repoSchema).min(1),
  })
  .strict();

export type KeepPolicy = z.infer<typeof keepSchema>;

/** One entry of the file: a repository or a glob of them (`*` is one path segment), and its policy. */
export interface RepoPolicy {
  /** As written: `alice/laptop`, `alice/*`, `*`. */
  pattern: string;
  passwordFile: string;
  keep: KeepPolicy;
  /** --maintain: how often (default 24 h). */
  scheduleMs: number;
  minAgeMs: number;
  maxShare: number;
  groupBy: string | undefined;
}

export interface MaintainConfig {
  /** The rest-server restic goes through (default: the server running --maintain). */
  server: string | undefined;
  user: string;
  passwordFile: string;
  reportDir: string | undefined;
  repos: RepoPolicy[];
}

const DAY_MS = 86_400_000;
export const DEFAULT_MIN_AGE_MS = 7 * DAY_MS;
export const DEFAULT_MAX_SHARE = 0.5;

/** Parse a maintain file's text; `where` names it in messages. Relative paths are from its folder. */
export function parseMaintainConfig(text: string, where: string): MaintainConfig {
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`${where}: not YAML: ${(error as Error).message}`);
  }
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue?.path.length ? issue.path.join(".") : "(top)";
    throw new ConfigError(`${where}: ${at}: ${issue?.message ?? "invalid"}`);
  }
  const file = parsed.data;
  const base = path.dirname(path.resolve(where));
  const resolve = (name: string) => path.resolve(base, name);
  return {
    server: file.server,
    user: file.user,
    passwordFile: resolve(file["password-file"]),
    reportDir: file["report-dir"] === undefined ? undefined : resolve(file["report-dir"]),
    repos: file.repos.map((entry) => ({
      pattern: entry.repo.replace(/^\/+|\/+$/g, ""),
      passwordFile: resolve(entry["password-file"]),
      keep: entry.keep,
      scheduleMs: entry.schedule ?? DAY_MS,
      minAgeMs: entry["min-age"] ?? file["min-age"] ?? DEFAULT_MIN_AGE_MS,
      maxShare: entry["max-forget-share"] ?? file["max-forget-share"] ?? DEFAULT_MAX_SHARE,
      groupBy: entry["group-by"],
    })),
  };
}

/**
 * A password file must be readable by its owner alone (0600 or 0400): one that others may read is
 * refused, naming the fix. Its content is never read here (restic reads the repository's key
 * password itself), only its mode.
 */
export async function checkPasswordFile(file: string): Promise<void> {
  let mode: number;
  try {
    mode = (await stat(file)).mode;
  } catch (error) {
    throw new ConfigError(`password file ${file}: ${(error as Error).message}`);
  }
  if ((mode & 0o077) !== 0)
    throw new ConfigError(
      `password file ${file} may be read by others (mode ${(mode & 0o777).toString(8).padStart(4, "0")}): chmod 600 ${file}`,
    );
}

/** Load and check a maintain file: its text, then every password file's mode. */
export async function loadMaintainConfig(file: string): Promise<MaintainConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read the maintain file ${file}: ${(error as Error).message}`);
  }
  const config = parseMaintainConfig(text, file);
  for (const name of new Set([config.passwordFile, ...config.repos.map((repo) => repo.passwordFile)]))
    await checkPasswordFile(name);
  return config;
}

/** Does a repository path match a pattern (`*` stands for one whole segment)? */
export function matchesPattern(pattern: string, repo: readonly string[]): boolean {
  const parts = pattern === "" ? [] : pattern.split("/");
  return parts.length === repo.length && parts.every((part, i) => part === "*" || part === repo[i]);
}
