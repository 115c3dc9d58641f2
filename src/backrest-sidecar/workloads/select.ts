import { StowageError } from "../../system/errors.js";
import type { Workload } from "./discover.js";
import { isTrue, LABEL } from "./labels.js";
import { dependenciesOf } from "./order.js";
import { workloadPlanId } from "./plan-id.js";

/** The workloads a name stands for: a service, `project/service`, a container name or a plan id. */
export function selectWorkloads(
  workloads: readonly Workload[],
  name: string,
  options: { planIdPrefix: string; includeProject: boolean },
): Workload[] {
  const matches = workloads.filter((w) => {
    const service = w.labels[LABEL.service];
    const project = w.labels[LABEL.project];
    return (
      w.name === name ||
      service === name ||
      (project !== undefined && `${project}/${service}` === name) ||
      workloadPlanId(w, options.planIdPrefix, options.includeProject) === name
    );
  });
  if (matches.length === 0) {
    const known = workloads.map((w) => w.labels[LABEL.service] ?? w.name);
    throw new StowageError(
      "NOT_FOUND",
      `no workload '${name}' (a service, project/service, container name or plan id; known: ${[...new Set(known)].join(", ") || "none"})`,
    );
  }
  const projects = new Set(matches.map((w) => w.labels[LABEL.project] ?? ""));
  if (projects.size > 1)
    throw new StowageError(
      "CONFIG",
      `'${name}' is a service in several projects (${[...projects].join(", ")}); say project/service`,
    );
  return matches;
}

/** Containers that depend on these (Compose's depends_on, same project), which must stop with them. */
export function dependantsOf(workloads: readonly Workload[], of: readonly Workload[]): Workload[] {
  const services = new Set(
    of.map((w) => `${w.labels[LABEL.project] ?? ""}\0${w.labels[LABEL.service] ?? ""}`),
  );
  return workloads.filter(
    (w) =>
      !of.includes(w) &&
      dependenciesOf(w).some((dep) => services.has(`${w.labels[LABEL.project] ?? ""}\0${dep}`)),
  );
}

/** Containers to stop: running, with the quiesce label (key=value). */
export function quiescedOf(workloads: readonly Workload[], label: string): Workload[] {
  const equals = label.indexOf("=");
  const key = equals < 0 ? label : label.slice(0, equals);
  const value = equals < 0 ? "true" : label.slice(equals + 1);
  return workloads.filter(
    (w) => w.running && (value === "true" ? isTrue(w.labels[key]) : w.labels[key] === value),
  );
}

/** The labelled containers a plan id stands for (replicas share one). */
export function workloadsOfPlan(
  workloads: readonly Workload[],
  planId: string,
  options: { planIdPrefix: string; includeProject: boolean },
): Workload[] {
  return workloads.filter(
    (w) =>
      w.labels[LABEL.enable] === "true" &&
      workloadPlanId(w, options.planIdPrefix, options.includeProject) === planId,
  );
}
