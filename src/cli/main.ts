import { describeError, exitCodeFor } from "../system/errors.js";
import { commanderExitCode } from "./program.js";

/**
 * Run a command's entry point and turn its outcome into the process exit status: one line on
 * stderr naming the command and the problem, and the exit code from the error's stable code.
 */
export async function runMain(name: string, main: (argv: string[]) => Promise<number>): Promise<void> {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (error) {
    const fromCommander = commanderExitCode(error);
    if (fromCommander !== undefined) {
      process.exitCode = fromCommander;
      return;
    }
    for (const line of describeError(error).split("\n")) process.stderr.write(`${name}: ${line}\n`);
    if (process.env.STOWAGE_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    process.exitCode = exitCodeFor(error);
  }
}
