import { createLogger } from "../system/log.js";
import {
  backupOnceCommand,
  recoverCommand,
  restoreCommand,
  verifyCommand,
} from "./backrest-sidecar-backup-cli.js";
import type { Context } from "./backrest-sidecar-context.js";
import { daemonCommand, reconcileCommand, statusCommand } from "./backrest-sidecar-plans-cli.js";
import { output } from "./output.js";
import { newProgram } from "./program.js";

export async function main(argv: string[]): Promise<number> {
  let status = 0;
  const ctx: Context = {
    log: createLogger({ name: "backrest-sidecar", pretty: false }),
    out: output("backrest-sidecar"),
    exit: (code) => {
      status = code;
    },
  };
  const program = newProgram(
    "backrest-sidecar",
    "Docker labels -> Backrest plans; a daemon on Docker events; one-shot backups with quiesce and per-workload retention.",
  ).addHelpText(
    "after",
    "\nExit status: 0 done, 2 nothing to change (or --dry-run), 3 some containers or workloads failed, 1 fatal.",
  );
  for (const subcommand of [
    reconcileCommand,
    daemonCommand,
    backupOnceCommand,
    restoreCommand,
    verifyCommand,
    recoverCommand,
    statusCommand,
  ])
    subcommand(program, ctx);
  await program.parseAsync(argv, { from: "user" });
  return status;
}
