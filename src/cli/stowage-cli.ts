import { UsageError } from "../system/errors.js";
import { newProgram } from "./program.js";
import { findTool, TOOLS } from "./tools.js";

function usage(): string {
  const width = Math.max(...TOOLS.map((tool) => tool.name.length));
  const lines = TOOLS.map((tool) => `  ${tool.name.padEnd(width)}  ${tool.summary}`);
  return `Commands:\n${lines.join("\n")}\n\nEach command also runs on its own (e.g. 'statecraft --help').\n`;
}

/** `stowage <tool> [args...]` hands the arguments untouched to the tool, so both spellings behave alike. */
export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  // For packaging (Makefile, Dockerfile): one command name per line, nothing else.
  if (first === "--list-commands") {
    process.stdout.write(`${TOOLS.map((tool) => tool.name).join("\n")}\n`);
    return 0;
  }
  const tool = first === undefined ? undefined : findTool(first);
  if (tool) return (await tool.load())(rest);

  const program = newProgram(
    "stowage",
    "Consistent backups of container hosts into restic-compatible storage.",
  )
    .usage("<command> [options]")
    .addHelpText("after", `\n${usage()}`)
    .argument("[command]")
    .allowExcessArguments(true)
    .action((command: string | undefined) => {
      if (command === undefined) {
        program.outputHelp();
        throw new UsageError("no command given");
      }
      throw new UsageError(`unknown command '${command}' (one of: ${TOOLS.map((t) => t.name).join(", ")})`);
    });
  await program.parseAsync(argv, { from: "user" });
  return 0;
}
