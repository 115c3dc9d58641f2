import type { Workload } from "./discover.js";
import { LABEL } from "./labels.js";

/** Compose v2's dependency label: `db:service_started:false,cache:service_healthy:true`. */
export const DEPENDS_ON = "com.docker.compose.depends_on";

/** The services a container depends on, from Compose's label. */
export function dependenciesOf(workload: Workload): string[] {
  const text = workload.labels[DEPENDS_ON];
  if (!text) return [];
  return text
    .split(",")
    .map((item) => item.split(":")[0]?.trim() ?? "")
    .filter((service) => service !== "");
}

/**
 * The order to stop containers in: a container before everything it depends on (within its compose
 * project), so dependants stop first and, started in the reverse order, start last. Containers
 * without dependency information keep their given order; a cycle leaves its members in it too.
 */
export function stopOrder(workloads: readonly Workload[]): Workload[] {
  const service = (w: Workload) => w.labels[LABEL.service];
  const project = (w: Workload) => w.labels[LABEL.project] ?? "";
  const byService = new Map<string, Workload[]>();
  for (const w of workloads) {
    const name = service(w);
    if (name === undefined) continue;
    const key = `${project(w)}\0${name}`;
    byService.set(key, [...(byService.get(key) ?? []), w]);
  }
  // Edges from a container to what it depends on: those must be stopped after it.
  const after = new Map<Workload, Workload[]>();
  for (const w of workloads)
    after.set(
      w,
      dependenciesOf(w).flatMap((dep) => byService.get(`${project(w)}\0${dep}`) ?? []),
    );
  // Dependants first: a container is placed once nothing still to be placed depends on it.
  const dependants = new Map<Workload, number>(workloads.map((w) => [w, 0]));
  for (const deps of after.values())
    for (const dep of deps) dependants.set(dep, (dependants.get(dep) ?? 0) + 1);
  const order: Workload[] = [];
  const placed = new Set<Workload>();
  while (order.length < workloads.length) {
    const next = workloads.find((w) => !placed.has(w) && dependants.get(w) === 0);
    // A cycle: take the first remaining one as it comes.
    const chosen = next ?? (workloads.find((w) => !placed.has(w)) as Workload);
    placed.add(chosen);
    order.push(chosen);
    for (const dep of after.get(chosen) ?? []) dependants.set(dep, (dependants.get(dep) ?? 0) - 1);
  }
  return order;
}
