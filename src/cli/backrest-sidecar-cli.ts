import { NotImplementedError } from "../system/errors.js";
import { newProgram } from "./program.js";

export async function main(argv: string[]): Promise<number> {
  const program = newProgram(
    "backrest-sidecar",
    "Docker labels -> Backrest plans; one-shot backups with quiesce and retention (not implemented yet).",
  )
    .allowUnknownOption(true)
    .allowExcessArguments(true);
  program.parse(argv, { from: "user" });
  throw new NotImplementedError("backrest-sidecar");
}
