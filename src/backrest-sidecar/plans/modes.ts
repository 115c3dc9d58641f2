import type Docker from "dockerode";
import type { Workload } from "../workloads/discover.js";
import { LABEL } from "../workloads/labels.js";
import { databaseEngine } from "../workloads/layout.js";
import { planVolumes, type SnapshotMode } from "../workloads/volumes.js";

/**
 * How Backrest backs a workload up. snapshot: the sidecar stops its quiesced containers only
 * while btrfs snapshots are taken, and Backrest's restic reads the snapshots; dump: Backrest's
 * restic stores the dump the container's own client prints; live: the seed's plan (live paths,
 * label hooks around the whole backup).
 */
export type PlanMode = "snapshot" | "dump" | "live";

export interface ModeOptions {
  /** The sidecar's endpoint as Backrest reaches it; without one every plan is live. */
  socket: string | undefined;
  snapshot: SnapshotMode;
  excludeBindMounts: boolean;
  volumePrefix: string;
}

export interface WorkloadMode {
  mode: PlanMode;
  /** Why a workload is live although it might not be, or why it cannot be planned. */
  reason?: string;
  error?: string;
}

/** Each workload's mode (by container id), decided on this host: where its mounts lie, its labels. */
export async function planModes(
  docker: Docker,
  workloads: readonly Workload[],
  options: ModeOptions,
): Promise<Map<string, WorkloadMode>> {
  const modes = new Map<string, WorkloadMode>();
  for (const workload of workloads) modes.set(workload.id, await modeOf(docker, workload, options));
  return modes;
}

async function modeOf(docker: Docker, workload: Workload, options: ModeOptions): Promise<WorkloadMode> {
  if (!options.socket) return { mode: "live" };
  if (databaseEngine(workload)) return { mode: "dump" };
  if (options.snapshot === "off") return { mode: "live", reason: "--snapshot off" };
  if (workload.labels[LABEL.include] !== undefined)
    return {
      mode: "live",
      reason: `${LABEL.include} picks paths; snapshot plans back up whole mounts, as backup-once does`,
    };
  const { planned, failed } = await planVolumes(docker, [workload], {
    mode: options.snapshot,
    excludeBindMounts: options.excludeBindMounts,
    volumePrefix: options.volumePrefix,
  });
  const failure = failed[0]?.error;
  if (failure !== undefined)
    return options.snapshot === "btrfs"
      ? { mode: "live", error: failure }
      : { mode: "live", reason: failure };
  if (planned[0]?.sources.length === 0) return { mode: "live", reason: "no mount to snapshot" };
  return planned[0]?.snapshot
    ? { mode: "snapshot" }
    : { mode: "live", reason: "not every mount is on btrfs" };
}
