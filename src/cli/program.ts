import { Command, CommanderError } from "commander";
import { ConfigError } from "../system/errors.js";
import { VERSION } from "./version.js";

/** A commander program with our conventions: errors are thrown (not process.exit), usage errors exit 2. */
export function newProgram(name: string, description: string, versionFlags = "--version"): Command {
  return new Command(name)
    .description(description)
    .version(VERSION, versionFlags, "print the version and exit")
    .helpOption("-h, --help", "print this help and exit")
    .showHelpAfterError(`(run '${name} --help' for usage)`)
    .exitOverride();
}

/** Exit status for a commander outcome: 0 after --help/--version, 2 (usage) for parse errors. */
export function commanderExitCode(error: unknown): number | undefined {
  if (!(error instanceof CommanderError)) return undefined;
  return error.exitCode === 0 ? 0 : 2;
}

/** A flag's value in seconds (non-negative, fractions allowed), or a ConfigError naming the flag. */
export function parseSeconds(value: string, flag: string): number {
  const seconds = Number(value);
  if (value.trim() === "" || !Number.isFinite(seconds) || seconds < 0) {
    throw new ConfigError(`${flag} ${value}: expected a number of seconds`);
  }
  return seconds;
}
