import { LABEL } from "./labels.js";

/** Lowercase, and every run of characters outside [a-z0-9_] becomes one "_". */
export function sanitizeId(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9_]+/g, "_");
}

export interface IdSource {
  containerName: string;
  project: string | undefined;
  service: string | undefined;
}

/** prefix + service (compose), or project_service with includeProject, else the container name. */
export function planId(prefix: string, source: IdSource, includeProject: boolean): string {
  let base = source.containerName;
  if (source.service)
    base = includeProject && source.project ? `${source.project}_${source.service}` : source.service;
  return `${prefix}${sanitizeId(base)}`;
}

/** A labelled container's plan id (compose's project and service labels, else its name). */
export function workloadPlanId(
  workload: { name: string; labels: Readonly<Record<string, string>> },
  prefix: string,
  includeProject: boolean,
): string {
  const source = {
    containerName: workload.name,
    project: workload.labels[LABEL.project],
    service: workload.labels[LABEL.service],
  };
  return planId(prefix, source, includeProject);
}
