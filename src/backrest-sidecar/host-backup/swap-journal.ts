import { lstat, rename, rm, unlink } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "../../system/log.js";
import { deadJournals, OwnedJournal } from "../../system/owned-journal.js";

/** A restored tree about to be swapped in: `staged` becomes `target`, the old tree goes to `old`. */
export interface Swap {
  target: string;
  staged: string;
  old: string;
  staging: string;
}

const SUFFIX = ".restore";

/**
 * Each swap of a restore is written down before its first rename: if the restore is killed between
 * the two renames, the next restore, backup-once or `recover` puts the new tree (or, when it is not
 * there, the old one) under the name. Never a mix: each tree is whole.
 */
export function openSwapJournal(stateDir: string, runId: string): Promise<OwnedJournal> {
  return OwnedJournal.create(path.join(stateDir, "journal"), `${runId}${SUFFIX}`);
}

export const exists = (file: string) =>
  lstat(file).then(
    () => true,
    () => false,
  );

/** Finish or undo the swaps of dead restores; returns how many had to be finished. */
export async function recoverRestores(stateDir: string, log: Logger): Promise<number> {
  let fixed = 0;
  for (const journal of await deadJournals<Swap>(path.join(stateDir, "journal"), SUFFIX)) {
    for (const swap of journal.records) {
      if (!(await exists(swap.target))) {
        if (await exists(swap.staged)) await rename(swap.staged, swap.target);
        else if (await exists(swap.old)) await rename(swap.old, swap.target);
        fixed++;
        log.warn(
          { action: "recover.restore", target: swap.target },
          "an interrupted restore's swap was finished",
        );
      }
      await rm(swap.old, { recursive: true, force: true });
      await rm(swap.staging, { recursive: true, force: true });
    }
    await unlink(journal.file);
  }
  return fixed;
}
