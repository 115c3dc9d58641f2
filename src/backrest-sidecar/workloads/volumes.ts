import { stat } from "node:fs/promises";
import type Docker from "dockerode";
import {
  type BtrfsLocation,
  locateBtrfs,
  type NestedSubvolume,
  nestedSubvolumes,
} from "../../system/btrfs.js";
import { isErrno } from "../../system/errors.js";
import { mountDataPath, selectMounts, type Workload } from "./discover.js";

export type SnapshotMode = "auto" | "btrfs" | "off";

/** One mount of a workload, as it will be read for the backup. */
export interface VolumeSource {
  /** Where the container sees it. */
  destination: string;
  /** Where its data is on this host. */
  hostPath: string;
  file: boolean;
  /** Set when read from a btrfs snapshot. */
  location?: BtrfsLocation;
  /** Subvolumes below it, snapshotted on their own (a snapshot holds them as empty directories). */
  nested: NestedSubvolume[];
}

export interface PlannedWorkload {
  workload: Workload;
  sources: VolumeSource[];
  /** Read from snapshots taken in the short stop window, else live (quiesced: stopped meanwhile). */
  snapshot: boolean;
}

export interface VolumePlanOptions {
  mode: SnapshotMode;
  excludeBindMounts: boolean;
  volumePrefix: string;
}

/**
 * Where each workload's mounts are read from. `auto`: from btrfs snapshots when every mount
 * source of the workload is on btrfs, else live; `btrfs`: snapshots or the workload fails; `off`:
 * live. A source that does not exist fails its workload (nothing of it is backed up).
 */
export async function planVolumes(
  docker: Docker,
  workloads: readonly Workload[],
  options: VolumePlanOptions,
): Promise<{ planned: PlannedWorkload[]; failed: Array<{ workload: Workload; error: string }> }> {
  const planned: PlannedWorkload[] = [];
  const failed: Array<{ workload: Workload; error: string }> = [];
  const volumes = new Map<string, string>();
  for (const workload of workloads) {
    try {
      const sources: VolumeSource[] = [];
      for (const mount of selectMounts(workload, options.excludeBindMounts)) {
        const hostPath = await mountDataPath(docker, mount, options.volumePrefix, volumes);
        const info = await stat(hostPath).catch((error: unknown) => {
          if (isErrno(error, "ENOENT"))
            throw new Error(`mount source ${hostPath} (for ${mount.destination}) does not exist`);
          throw error;
        });
        const location = options.mode === "off" ? undefined : await locateBtrfs(hostPath);
        const nested = location && info.isDirectory() ? await nestedSubvolumes(hostPath, location) : [];
        sources.push({
          destination: mount.destination,
          hostPath,
          file: info.isFile(),
          nested,
          ...(location ? { location } : {}),
        });
      }
      const onBtrfs = sources.every((source) => source.location);
      if (options.mode === "btrfs" && !onBtrfs) {
        const off = sources.filter((s) => !s.location).map((s) => s.hostPath);
        throw new Error(`--snapshot btrfs: ${off.join(", ")} is not on btrfs`);
      }
      planned.push({ workload, sources, snapshot: options.mode !== "off" && onBtrfs });
    } catch (error) {
      failed.push({ workload, error: (error as Error).message });
    }
  }
  return { planned, failed };
}
