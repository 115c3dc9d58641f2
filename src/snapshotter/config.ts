import { readFile } from "node:fs/promises";
import path from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { ConfigError, isErrno } from "../system/errors.js";

/** config.yml as the original reads it: where in the archive, and which volumes. */
export interface SnapshotConfig {
  prefix: string;
  /** Absolute paths (inside the container): directories or single files. Undefined = all mounts. */
  volumes: string[] | undefined;
}

/** Why a prefix cannot be used, or undefined: relative, no "..", no leading "/", not empty. */
export function prefixProblem(prefix: string): string | undefined {
  if (prefix.trim() === "") return "is empty";
  if (prefix.startsWith("/")) return "must be relative (no leading '/')";
  if (prefix.split("/").some((part) => part === ".." || part === "."))
    return "may not contain '.' or '..' segments";
  if (prefix.split("/").some((part) => part === ""))
    return "may not contain empty segments ('//' or a trailing '/')";
  if (prefix.includes("\0")) return "may not contain NUL";
  // `<prefix>/<64 hex>/...` is how a volume's members are told from other content.
  if (prefix.split("/").some((part) => /^[0-9a-f]{64}$/.test(part)))
    return "may not contain a segment of 64 hex digits (volume ids take that place)";
  return undefined;
}

const schema = z
  .object({
    prefix: z.string({ error: "prefix: expected a string" }).optional(),
    volumes: z
      .array(z.string({ error: "volumes: every entry must be a string" }), {
        error: "volumes: expected a list of absolute paths",
      })
      .optional()
      .nullable(),
  })
  .passthrough();

/** Check a prefix and volume list, wherever they came from (config file or flags). */
export function checkConfig(
  config: { prefix?: string | undefined; volumes?: string[] | undefined | null },
  source: string,
): SnapshotConfig {
  if (config.prefix === undefined)
    throw new ConfigError(`${source}: prefix: missing (e.g. prefix: volumes/mycontainer)`);
  const problem = prefixProblem(config.prefix);
  if (problem) throw new ConfigError(`${source}: prefix ${JSON.stringify(config.prefix)} ${problem}`);
  const volumes = config.volumes ?? undefined;
  for (const [index, volume] of (volumes ?? []).entries()) {
    if (!path.isAbsolute(volume))
      throw new ConfigError(
        `${source}: volumes[${index}] ${JSON.stringify(volume)} must be an absolute path`,
      );
  }
  const normalised = volumes?.map((volume) => path.resolve(volume));
  const duplicate = normalised?.find((volume, index) => normalised.indexOf(volume) !== index);
  if (duplicate) throw new ConfigError(`${source}: volumes lists ${duplicate} twice`);
  return { prefix: config.prefix.replace(/^\.\//, ""), volumes: volumes?.length ? volumes : undefined };
}

/** Read config.yml; undefined when the file does not exist and `optional` is set. */
export async function loadConfig(
  file: string,
  optional: boolean,
): Promise<{ prefix?: string; volumes?: string[] } | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if (optional && isErrno(error, "ENOENT")) return undefined;
    if (isErrno(error, "EISDIR")) {
      throw new ConfigError(
        `${file} is a directory (docker run -v creates one when the file is missing on the host)`,
      );
    }
    throw new ConfigError(`cannot read config ${file}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (error) {
    throw new ConfigError(`${file}: not valid YAML: ${(error as Error).message.split("\n")[0]}`);
  }
  const result = schema.safeParse(raw ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ConfigError(
      `${file}: ${issue?.message ?? "invalid"}${issue?.path.length ? ` (at ${issue.path.join(".")})` : ""}`,
    );
  }
  return {
    ...(result.data.prefix !== undefined ? { prefix: result.data.prefix } : {}),
    ...(result.data.volumes ? { volumes: result.data.volumes } : {}),
  };
}
