import path from "node:path";
import type Docker from "dockerode";
import { engineCall } from "../../system/docker.js";
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
 * With `ids`, only those containers (the engine's list answers from its own view without waiting
 * for a container being started, as an inspect would).
 */
export async function listWorkloads(
  docker: Docker,
  labels: readonly string[],
  ids?: readonly string[],
): Promise<Workload[]> {
  const filters = {
    ...(labels.length > 0 ? { label: [...labels] } : {}),
    ...(ids ? { id: [...ids] } : {}),
  };
  const containers = await engineCall(docker, "list containers", () =>
    docker.listContainers({ all: true, ...(Object.keys(filters).length > 0 ? { filters } : {}) }),
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
    .sort(byName);
}

/** Workloads in the order listWorkloads gives them. */
export const byName = (a: Workload, b: Workload) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

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

/**
 * Where a mount's data lives on this host, resolved once per run: a bind's source; a named
 * volume's `<volume-prefix>/<name>/_data`, or, for a local-driver volume that binds a directory
 * (`--opt type=none --opt o=bind --opt device=DIR`), DIR itself: the engine unmounts such a
 * volume from `_data` when its container stops, and the data must be read (and restored) where
 * it stays.
 */
export async function mountDataPath(
  docker: Docker,
  mount: WorkloadMount,
  volumePrefix: string,
  cache: Map<string, string>,
): Promise<string> {
  if (mount.type !== "volume" || !mount.name) return mount.source;
  const known = cache.get(mount.name);
  if (known !== undefined) return known;
  const volume = mount.name;
  const info = await engineCall(docker, `inspect volume ${volume}`, () => docker.getVolume(volume).inspect());
  const options = (info.Options ?? {}) as Record<string, string>;
  const binds = (options.o ?? "").split(",").some((o) => o === "bind" || o === "rbind");
  const resolved =
    info.Driver === "local" && options.type === "none" && binds && options.device
      ? options.device
      : path.posix.join(volumePrefix, volume, "_data");
  cache.set(volume, resolved);
  return resolved;
}
