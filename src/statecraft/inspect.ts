import path from "node:path";
import { run } from "../system/exec.js";
import type { StateScript } from "./scripts.js";

export interface ScriptCheck {
  script: StateScript;
  errors: string[];
  warnings: string[];
}

/**
 * Validate one state script without running setup_path: bash syntax, a setup_path function after
 * sourcing it with the helper library, and safe permissions (root sources it).
 */
export async function checkScript(script: StateScript, lib: string): Promise<ScriptCheck> {
  const errors: string[] = [];
  const warnings: string[] = [];
  if (script.mode & 0o002)
    errors.push("is world-writable (anyone could run code as the user running statecraft)");
  if (!(script.mode & 0o111)) warnings.push("is not executable (it is sourced, so this is allowed)");
  const syntax = await run("bash", ["-n", script.file], { okStatuses: [0, 1, 2] });
  if (syntax.status !== 0) errors.push(`has a bash syntax error: ${syntax.stderr.trim()}`);
  else {
    const probe = await run(
      "bash",
      [
        "-c",
        'source "$LIB_DIR/include/statecraft.sh" && source "$1" >/dev/null && declare -F setup_path >/dev/null',
        "check",
        script.file,
      ],
      { okStatuses: [0, 1, 2, 127], env: { ...process.env, LIB_DIR: lib } },
    );
    if (probe.status !== 0) {
      errors.push(
        probe.stderr.trim()
          ? `failed when sourced: ${probe.stderr.trim()}`
          : "defines no setup_path function",
      );
    }
  }
  return { script, errors, warnings };
}

/** One line per path for --dry-run / --list. */
export function describe(script: StateScript): string {
  const source = script.source === script.target ? "" : ` from ${JSON.stringify(script.source)}`;
  return `${JSON.stringify(script.target)}${source}: ${path.basename(script.resolved)} (${script.file})`;
}
