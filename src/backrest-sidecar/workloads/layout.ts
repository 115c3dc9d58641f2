import path from "node:path";
import { selectMounts, type Workload } from "./discover.js";
import { isTrue, LABEL } from "./labels.js";

/** rcb's labels for a database to dump: `restic-compose-backup.postgres=true`, ... */
export type DatabaseEngine = "postgres" | "mariadb" | "mysql";
const DATABASE_ENGINES: readonly DatabaseEngine[] = ["postgres", "mariadb", "mysql"];

export function databaseEngine(workload: Workload): DatabaseEngine | undefined {
  return DATABASE_ENGINES.find((engine) => isTrue(workload.labels[`restic-compose-backup.${engine}`]));
}

/** `<root>[/<project>]/<service>`: rcb's folder for a container (service, else container name). */
export function workloadPrefix(workload: Workload, root: string, includeProject: boolean): string {
  const service = workload.labels[LABEL.service] ?? workload.name;
  const project = workload.labels[LABEL.project];
  return path.posix.join(root, ...(includeProject && project ? [project] : []), service);
}

/** rcb's place for a dump: `/databases/[<project>/]<service>/all.sql`. */
export function dumpPath(workload: Workload, includeProject: boolean): string {
  return path.posix.join(workloadPrefix(workload, "/databases", includeProject), "all.sql");
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
