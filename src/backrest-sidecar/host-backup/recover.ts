import type Docker from "dockerode";
import type { Logger } from "../../system/log.js";
import { recoverMounts } from "./plan-session.js";
import { recoverSnapshots, type SnapshotRecovery } from "./snapshots.js";
import { withStateLock } from "./state-lock.js";
import { recoverStopped } from "./stop-journal.js";
import { recoverRestores } from "./swap-journal.js";

export interface Recovery extends SnapshotRecovery {
  /** Containers a crashed run had stopped, started again. */
  started: string[];
  /** Interrupted restores whose swap was finished (or undone). */
  restores: number;
  /** Crashed sidecars' snapshot plans whose mounts were undone. */
  mounts: number;
}

/**
 * What crashed runs left: their btrfs snapshots deleted, interrupted restores' swaps finished, the
 * containers they had stopped started again.
 * Under the state dir's lock, so a live run's journals are never touched.
 */
export async function recoverAll(
  docker: Docker,
  stateDir: string,
  log: Logger,
  signal?: AbortSignal,
): Promise<Recovery> {
  return withStateLock(stateDir, "recover", { log, ...(signal ? { signal } : {}) }, () =>
    recoverLocked(docker, stateDir, log),
  );
}

/** The same, for a caller that holds the state dir's lock (backup-once and restore start so). */
export async function recoverLocked(docker: Docker, stateDir: string, log: Logger): Promise<Recovery> {
  // Unmounted first: a crashed sidecar's snapshots can be deleted only once nothing mounts them.
  const mounts = await recoverMounts(stateDir, log);
  const snapshots = await recoverSnapshots(stateDir, log);
  const restores = await recoverRestores(stateDir, log);
  // Last: a restore's swap is finished before its containers start on the restored data.
  const started = await recoverStopped(docker, stateDir, log);
  const recovery = { ...snapshots, restores, started, mounts };
  if (recovery.removed > 0 || recovery.restores > 0 || started.length > 0 || mounts > 0)
    log.info(
      { action: "recover.done", snapshots: recovery.removed, restores: recovery.restores, started },
      "what crashed runs left is cleaned up",
    );
  return recovery;
}
