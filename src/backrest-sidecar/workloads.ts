import type Docker from "dockerode";
import { engineCall } from "../system/docker.js";
import { LABEL, splitCsv } from "./labels.js";

export interface WorkloadMount {
  type: string;
  name?: string;
  source: string;
  destination: string;
}

/** A container labelled backrest.enable (running or not), as the Docker API lists it. */
export interface Workload {
  id: string;
  name: string;
  running: boolean;
  labels: Record<string, string>;
  mounts: WorkloadMount[];
}

/**
 * Containers, running or not, in one API call, that carry every one of these labels (`key` or
 * `key=value`): reconcile asks for backrest.enable=true; backup-once reads any container's rcb labels.
 */
export async function listWorkloads(docker: Docker, labels: readonly string[]): Promise<Workload[]> {
  const containers = await engineCall(docker, "list containers", () =>
    docker.listContainers({
      all: true,
      ...(labels.length > 0 ? { filters: { label: [...labels] } } : {}),
    }),
  );
  return containers
    .map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? c.Id).replace(/^\//, ""),
      running: c.State === "running",
      labels: c.Labels ?? {},
      mounts: (c.Mounts ?? []).map((m) => ({
        type: m.Type,
        ...(m.Name ? { name: m.Name } : {}),
        source: m.Source,
        destination: m.Destination,
      })),
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The mounts to back up: binds (unless excluded) and named volumes, narrowed by
 * restic-compose-backup.volumes.include / .exclude (substrings of the volume name or source).
 */
export function selectMounts(workload: Workload, excludeBindMounts: boolean): WorkloadMount[] {
  const include = splitCsv(workload.labels[LABEL.volumesInclude]);
  const exclude = splitCsv(workload.labels[LABEL.volumesExclude]);
  return workload.mounts.filter((mount) => {
    if (mount.type !== "bind" && mount.type !== "volume") return false;
    if (mount.type === "bind" && excludeBindMounts) return false;
    const source = mount.name ?? mount.source;
    if (include.length > 0 && !include.some((part) => source.includes(part))) return false;
    return !exclude.some((part) => source.includes(part));
  });
}
