import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import type { z } from "zod";
import { ConfigError } from "./errors.js";

/**
 * A settings file in YAML or JSON (JSON is YAML), checked against a zod schema: every problem
 * named with its place in the file (`default.keep: ...`), one ConfigError for all of them.
 */
export function parseStructured<T extends z.ZodType>(text: string, source: string, schema: T): z.output<T> {
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (error) {
    throw new ConfigError(`${source}: not valid YAML or JSON: ${(error as Error).message}`);
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.map(String).join(".") || "(top)"}: ${issue.message}`,
    );
    throw new ConfigError(`${source}: ${problems.join("; ")}`);
  }
  return result.data;
}

/** The same, read from a file; a file that cannot be read is a ConfigError naming it. */
export async function readStructured<T extends z.ZodType>(
  file: string,
  what: string,
  schema: T,
): Promise<z.output<T>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError(
      `cannot read ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  return parseStructured(text, file, schema);
}
