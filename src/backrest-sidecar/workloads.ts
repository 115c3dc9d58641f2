import type Docker from "dockerode";
import { LABEL } from "./labels.js";

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
 * Containers, running or not, in one API call: those with backrest.enable=true (reconcile), or
 * every one (`label` undefined: backup-once reads the rcb labels of any container).
 */
export async function listWorkloads(
  docker: Docker,
  label: string | undefined = `${LABEL.enable}=true`,
): Promise<Workload[]> {
  const containers = await docker.listContainers({
    all: true,
    ...(label ? { filters: { label: [label] } } : {}),
  });
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
