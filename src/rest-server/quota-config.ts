import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { z } from "zod";
import { ConfigError } from "../system/errors.js";
import { parseSize } from "./size.js";

/** Byte limits: the whole `--path`, each user's `/<user>/...` repositories, single repositories. */
export interface QuotaLimits {
  total?: number;
  users: Map<string, number>;
  repos: Map<string, number>;
}

const sizeValue = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const bytes = parseSize(value);
  if (bytes === undefined) {
    ctx.addIssue({
      code: "custom",
      message: `not a size: ${JSON.stringify(value)} (e.g. 1048576, 512MiB, 10GB)`,
    });
    return z.NEVER;
  }
  return bytes;
});

const quotaFileSchema = z
  .object({
    total: sizeValue.optional(),
    users: z.record(z.string().min(1), sizeValue).default({}),
    repos: z.record(z.string(), sizeValue).default({}),
  })
  .strict();

/** Parse a quota file (YAML or JSON). Repo keys are paths without slashes at the ends: `alice/laptop`. */
export function parseQuotaFile(text: string, source: string): QuotaLimits {
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (error) {
    throw new ConfigError(`${source}: not valid YAML: ${(error as Error).message}`);
  }
  const result = quotaFileSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join(".") || "(top)"}: ${issue.message}`,
    );
    throw new ConfigError(`${source}: ${problems.join("; ")}`);
  }
  const repos = new Map<string, number>();
  for (const [key, bytes] of Object.entries(result.data.repos))
    repos.set(key.replace(/^\/+|\/+$/g, ""), bytes);
  return {
    ...(result.data.total !== undefined ? { total: result.data.total } : {}),
    users: new Map(Object.entries(result.data.users)),
    repos,
  };
}

export async function loadQuotaFile(file: string): Promise<QuotaLimits> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read quota file ${file}: ${(error as Error).message}`);
  }
  return parseQuotaFile(text, file);
}
