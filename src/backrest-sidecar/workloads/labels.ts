/** The labels the sidecar reads (seed 004), and compose's own. */
export const LABEL = {
  enable: "backrest.enable",
  repo: "backrest.repo",
  schedule: "backrest.schedule",
  include: "backrest.paths.include",
  exclude: "backrest.paths.exclude",
  pre: "backrest.pre",
  post: "backrest.post",
  keep: "backrest.keep",
  notify: "backrest.notify",
  healthchecks: "backrest.healthchecks",
  quiesce: "restic-compose-backup.quiesce",
  volumes: "restic-compose-backup.volumes",
  volumesInclude: "restic-compose-backup.volumes.include",
  volumesExclude: "restic-compose-backup.volumes.exclude",
  project: "com.docker.compose.project",
  service: "com.docker.compose.service",
} as const;

/** A label value that means yes, as compose users write it. */
export function isTrue(value: string | undefined): boolean {
  return value !== undefined && /^(true|yes|1|on)$/i.test(value.trim());
}

/**
 * Split a comma-separated label value into trimmed, non-empty items. Commas inside single or
 * double quotes do not split, so a hook like `sh -c 'a, b'` stays one command.
 */
export function splitCsv(value: string | undefined): string[] {
  if (value === undefined) return [];
  const items: string[] = [];
  let current = "";
  let quote: string | undefined;
  for (const char of value) {
    if (quote) {
      if (char === quote) quote = undefined;
      current += char;
    } else if (char === "'" || char === '"') {
      quote = char;
      current += char;
    } else if (char === ",") {
      items.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  items.push(current);
  return items.map((item) => item.trim()).filter((item) => item !== "");
}
