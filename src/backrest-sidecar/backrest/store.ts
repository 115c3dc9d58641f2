/**
 * Where Backrest's config lives and how a change reaches it: its file (seed 004's model, applied
 * by a restart) or a running Backrest's API (applied at once). Reconcile reads, merges and writes
 * through this interface only.
 */

export type Json = Record<string, unknown>;

/** "seed": the sidecar's own model (repos with url, plans with sources); "backrest": Backrest's protojson. */
export type ConfigFormat = "seed" | "backrest";

export interface LoadedConfig {
  format: ConfigFormat;
  data: Json;
  /** False for a config file that is not there yet (it has no plans). */
  exists: boolean;
}

export interface ConfigStore {
  /** The file or the URL, for messages (never with credentials). */
  readonly where: string;
  /** "file": writes take effect when Backrest restarts; "api": at once, nothing restarts. */
  readonly kind: "file" | "api";
  read(): Promise<LoadedConfig>;
  /**
   * Store `data`, made from `base`. Backrest's modno is bumped once, by the store: a file store
   * bumps it itself, Backrest's API does. Throws ConfigConflictError when the config changed
   * since `base` was read (the API's modno check), leaving it as the other writer left it.
   * Resolves the config as now stored when the store is told it (Backrest's answer to SetConfig).
   */
  write(data: Json, base: LoadedConfig): Promise<LoadedConfig | undefined>;
  /** Run a read-merge-write with no other writer of ours in between, where the store can ensure it. */
  exclusive<T>(work: () => Promise<T>): Promise<T>;
}

export function repoIds(config: LoadedConfig): string[] {
  const repos = Array.isArray(config.data.repos) ? (config.data.repos as Json[]) : [];
  return repos.map((repo) => repo.id).filter((id): id is string => typeof id === "string");
}

/** Backrest's instance id (the `created-by:` tag of its snapshots), when the config has one. */
export function instanceId(config: LoadedConfig): string | undefined {
  const id = config.data.instance;
  return typeof id === "string" && id !== "" ? id : undefined;
}
