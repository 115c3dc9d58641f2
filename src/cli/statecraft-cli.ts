import { EscapeError, escapePath, unescapePath } from "../statecraft/escape.js";
import { checkScript, describe } from "../statecraft/inspect.js";
import { forgetRun, recoverDeadRuns } from "../statecraft/journal.js";
import { defaultPathsDir, libDir, stateDir } from "../statecraft/locations.js";
import { recoveryProblems } from "../statecraft/recovery-report.js";
import { runState } from "../statecraft/run.js";
import { discoverScripts, resolvePathsDir } from "../statecraft/scripts.js";
import { ConfigError, ERROR_EXIT_CODES, UsageError } from "../system/errors.js";
import { output } from "./output.js";
import { newProgram, parseSeconds } from "./program.js";
import { VERSION } from "./version.js";

interface Flags {
  escape?: string;
  unescape?: string;
  paths?: string;
  target?: string;
  quiet?: boolean;
  verbose?: boolean;
  recover?: boolean;
  forget?: string;
  dryRun?: boolean;
  list?: boolean;
  check?: boolean;
  stateDir?: string;
  grace: string;
}

function program() {
  return newProgram(
    "statecraft",
    "Run COMMAND inside a private, consistent view of the host assembled from a paths.d of state scripts.",
  )
    .usage(
      "[-q|-v] [-p DIR] [-t DIR] COMMAND [ARG]...\n       statecraft -e ABSOLUTE_PATH | -u ESCAPED_NAME | --recover | --forget RUN_ID | --check",
    )
    .option("-e, --escape <path>", "print the escaped name of an absolute path (as systemd-escape --path)")
    .option("-u, --unescape <name>", "print the path of a canonical escaped name")
    .option("-p, --paths <dir>", `state script directory (default: ${defaultPathsDir()})`)
    .option("-t, --target <dir>", "assemble the state here (default: a private tmpfs in the run dir)")
    .option("-q, --quiet", "no informational output")
    .option("-v, --verbose", "trace commands to stderr")
    .option("--dry-run", "list what each path would do, change nothing")
    .option("--list", "list the paths and their scripts")
    .option("--check", "validate script names, permissions and setup_path, change nothing")
    .option("--recover", "clean up what crashed runs left behind (btrfs snapshots, mounts, files)")
    .option("--forget <run-id>", "drop a dead run's cleanup journal on purpose (its disk is gone for good)")
    .option("--state-dir <dir>", "where cleanup journals are kept (default: /var/lib/statecraft for root)")
    .option("--grace <seconds>", "time COMMAND gets after a forwarded signal before SIGKILL", "30")
    .argument("[command...]", "the backup command and its arguments")
    .passThroughOptions()
    .allowExcessArguments(true);
}

const { print, warn, error } = output("statecraft");

function escapeMode(flags: Flags): number | undefined {
  try {
    if (flags.escape !== undefined) print(escapePath(flags.escape));
    else if (flags.unescape !== undefined) print(unescapePath(flags.unescape));
    else return undefined;
    return 0;
  } catch (error) {
    if (error instanceof EscapeError) throw new ConfigError(error.message);
    throw error;
  }
}

async function inspect(flags: Flags, pathsDir: string): Promise<number> {
  const scripts = await discoverScripts(pathsDir);
  if (flags.dryRun || flags.list) {
    if (!flags.quiet) print(`${scripts.length} path(s) in ${pathsDir}, set up in this order:`);
    for (const script of scripts) print(`  ${describe(script)}`);
    if (!flags.check) return 0;
  }
  let failed = false;
  for (const check of await Promise.all(scripts.map((script) => checkScript(script, libDir())))) {
    for (const warning of check.warnings) warn(`${check.script.file} ${warning}`);
    for (const problem of check.errors) error(`${check.script.file} ${problem}`);
    failed ||= check.errors.length > 0;
  }
  if (!failed && !flags.quiet) print(`${scripts.length} state script(s) OK`);
  return failed ? 1 : 0;
}

/** Exit 0 when nothing is left; 75 (try later) when only missing filesystems hold a journal; 1 on failures. */
async function recover(flags: Flags): Promise<number> {
  const result = await recoverDeadRuns(stateDir(flags.stateDir), libDir(), { trace: Boolean(flags.verbose) });
  if (!flags.quiet) {
    const waiting = result.waiting.length > 0 ? `; ${result.waiting.length} waiting for a filesystem` : "";
    print(`recovered ${result.replayed.length} run(s); ${result.live.length} still running${waiting}`);
  }
  for (const line of recoveryProblems(result)) process.stderr.write(`${line}\n`);
  if (result.failed.length > 0) return ERROR_EXIT_CODES.EXEC_FAILED;
  return result.waiting.length > 0 ? ERROR_EXIT_CODES.TEMPORARY : 0;
}

async function forget(flags: Flags, runId: string): Promise<number> {
  const actions = await forgetRun(stateDir(flags.stateDir), runId);
  print(`forgot run ${runId}; these cleanup actions were never done (do them by hand if still needed):`);
  for (const action of actions) print(`  ${action}`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const cli = program();
  cli.parse(argv, { from: "user" });
  const flags = cli.opts<Flags>();
  const command = cli.args;

  const escaped = escapeMode(flags);
  if (escaped !== undefined) return escaped;

  if (flags.recover) return recover(flags);
  if (flags.forget !== undefined) return forget(flags, flags.forget);

  const pathsDir = await resolvePathsDir(flags.paths ?? defaultPathsDir());
  if (flags.dryRun || flags.list || flags.check) return inspect(flags, pathsDir);

  if (command.length === 0) throw new UsageError("no COMMAND given (see 'statecraft --help')");
  const grace = parseSeconds(flags.grace, "--grace");
  const scripts = await discoverScripts(pathsDir);
  return runState({
    scripts,
    pathsDir,
    command,
    target: flags.target,
    quiet: Boolean(flags.quiet),
    verbose: Boolean(flags.verbose),
    stateDir: flags.stateDir,
    graceSeconds: grace,
    version: VERSION,
  });
}
