import { UsageError } from "../system/errors.js";
import { newProgram } from "./program.js";
import { findTool, programsOf, TOOLS } from "./tools.js";

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
  // For the Dockerfile: the programs the image of a command (or of stowage, all) must carry.
  if (first === "--list-programs") {
    const command = rest[0] ?? "stowage";
    const programs = programsOf(command);
    if (!programs || rest.length > 1)
      throw new UsageError(
        `--list-programs takes one command (one of: stowage, ${TOOLS.map((t) => t.name).join(", ")})`,
      );
    process.stdout.write(programs.map((program) => `${program}\n`).join(""));
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
