import { mkdir } from "node:fs/promises";
import { run } from "../../src/system/exec.js";

/**
 * Extract an archive into `target` (made if missing) with GNU tar keeping all it can: modes,
 * numeric owners, ACLs and xattrs of every namespace. What a user runs to check an archive of ours.
 */
export async function gnuTarExtractAll(archive: string, target: string): Promise<void> {
  await mkdir(target, { recursive: true });
  await run("tar", [
    "--xattrs",
    "--xattrs-include=*",
    "--acls",
    "--numeric-owner",
    "-xpf",
    archive,
    "-C",
    target,
  ]);
}
