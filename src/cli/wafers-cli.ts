import type { Command } from "commander";
import { commitWafer } from "../wafers/commit.js";
import { formatList, formatTree, listWafers } from "../wafers/inspect.js";
import { withStoreLock } from "../wafers/lock.js";
import { removeWafer } from "../wafers/remove.js";
import { stack } from "../wafers/stack.js";
import { checkRoot, WaferStore } from "../wafers/store.js";
import { unstack } from "../wafers/unstack.js";
import { output } from "./output.js";
import { newProgram } from "./program.js";

interface GlobalFlags {
  wafers?: string;
  stacks?: string;
}

const { print, warn, error } = output("wafers");

/** Flags beat the environment, which beats the original's defaults. */
function roots(program: Command): { store: WaferStore; stacks: string } {
  const flags = program.opts<GlobalFlags>();
  const wafers = checkRoot(flags.wafers ?? process.env.WAFERS ?? "/var/lib/wafers", "WAFERS");
  const stacks = checkRoot(flags.stacks ?? process.env.STACKS ?? "/var/lib/machines", "STACKS");
  return { store: new WaferStore(wafers), stacks };
}

export async function main(argv: string[]): Promise<number> {
  let status = 0;
  const program = newProgram("wafers", "Named overlayfs stacks of layered root filesystems.")
    .option("--wafers <dir>", "where wafers live [env WAFERS, default /var/lib/wafers]")
    .option("--stacks <dir>", "where stacks are mounted [env STACKS, default /var/lib/machines]")
    .enablePositionalOptions();

  program
    .command("stack")
    .description("mount the stack of wafer NAME at $STACKS/NAME, creating NAME on top of PARENT if new")
    .argument("<name>")
    .argument("[parent]")
    .action(async (name: string, parent: string | undefined) => {
      const { store, stacks } = roots(program);
      const result = await withStoreLock(store, () => stack(store, stacks, name, parent));
      for (const line of result.warnings) warn(line);
      if (result.alreadyStacked) print(`${name} is already stacked at ${result.mountPoint}`);
      else print(`${result.layers} wafers stacked at ${result.mountPoint}`);
    });

  program
    .command("unstack")
    .description("unmount the stacks wafers mounted at $STACKS/NAME and remove their mount points")
    .argument("<name...>")
    .action(async (names: string[]) => {
      const { store, stacks } = roots(program);
      const reports = await withStoreLock(store, () => unstack(store, stacks, names));
      for (const report of reports) {
        if (report.ok) print(report.message);
        else error(`${report.name}: ${report.message}`);
      }
      if (reports.some((report) => !report.ok)) status = 1;
    });

  program
    .command("list")
    .description("list wafers with their parent, stack depth and where they are mounted")
    .option("--json", "machine-readable output")
    .action(async (options: { json?: boolean }) => {
      const { store } = roots(program);
      const infos = await listWafers(store);
      print(options.json ? JSON.stringify(infos, null, 2) : formatList(infos));
    });

  program
    .command("tree")
    .description("show wafers as a tree under their root wafers")
    .action(async () => {
      const { store } = roots(program);
      const text = formatTree(await listWafers(store));
      if (text !== "") print(text);
    });

  program
    .command("rm")
    .description("delete a wafer; refused while it has children or is mounted")
    .argument("<name>")
    .action(async (name: string) => {
      const { store } = roots(program);
      await withStoreLock(store, () => removeWafer(store, name));
      print(`removed wafer ${name}`);
    });

  program
    .command("commit")
    .description("write the wafer's own layer as a tar (OCI whiteouts: .wh.<name>, .wh..wh..opq)")
    .argument("<name>")
    .requiredOption("-o, --output <file>", "the tar file to write")
    .action(async (name: string, options: { output: string }) => {
      const { store } = roots(program);
      await commitWafer(store, name, options.output, warn);
    });

  await program.parseAsync(argv, { from: "user" });
  return status;
}
