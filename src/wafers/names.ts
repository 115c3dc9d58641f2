import { ConfigError } from "../system/errors.js";

const MAX_NAME = 64;
const LABEL = /^[A-Za-z0-9_-]+$/;

/** Why a wafer name breaks machinectl's rule, or undefined when it is fine. */
export function nameProblem(name: string): string | undefined {
  if (name === "") return "is empty";
  if (name.length > MAX_NAME) return `is longer than ${MAX_NAME} characters`;
  if (name === "." || name === "..") return "is '.' or '..'";
  if (name.startsWith(".")) return "starts with a dot";
  for (const label of name.split(".")) {
    if (label === "") return "has an empty label (two dots, or a dot at the end)";
    if (!LABEL.test(label)) return "may hold only letters, digits, '_', '-' and '.' between labels";
  }
  return undefined;
}

/**
 * Machine names as machinectl accepts them: dot-separated labels of [A-Za-z0-9_-], at most 64
 * characters, no leading dot, no empty label. Anything else could escape $WAFERS or $STACKS.
 */
export function checkName(name: string, what = "wafer name"): string {
  const problem = nameProblem(name);
  if (problem) throw new ConfigError(`invalid ${what} ${JSON.stringify(name)}: it ${problem}`);
  return name;
}
