import path from "node:path";
import { databaseEngine } from "./databases.js";
import { isTrue, LABEL } from "./labels.js";
import { selectMounts, type Workload } from "./workloads.js";

/** `/volumes[/<project>]/<service>`: rcb's folder for a container (service, else container name). */
export function workloadPrefix(workload: Workload, volumesRoot: string, includeProject: boolean): string {
  const service = workload.labels[LABEL.service] ?? workload.name;
  const project = workload.labels[LABEL.project];
  return path.posix.join(volumesRoot, ...(includeProject && project ? [project] : []), service);
}

/** The workloads whose volumes this run backs up: rcb's volumes label, and something to back up. */
export function backedUp(
  workloads: readonly Workload[],
  options: { excludeBindMounts: boolean },
): Workload[] {
  return workloads.filter(
    (w) => isTrue(w.labels[LABEL.volumes]) && selectMounts(w, options.excludeBindMounts).length > 0,
  );
}

/** The workloads whose databases this run dumps (running, with rcb's postgres/mariadb/mysql label). */
export function dumped(workloads: readonly Workload[]): Workload[] {
  return workloads.filter((w) => w.running && databaseEngine(w) !== undefined);
}
