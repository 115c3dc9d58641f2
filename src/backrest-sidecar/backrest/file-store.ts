import { constants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../../system/atomic-write.js";
import { ConfigError, isErrno } from "../../system/errors.js";
import { withLock } from "../../system/lock.js";
import type { ConfigFormat, ConfigStore, Json, LoadedConfig } from "./store.js";

/** Backrest's file has modno/version, or repos with `uri` (the seed's have `url`). */
export function detectFormat(data: Json): ConfigFormat {
  if ("modno" in data || "version" in data || "instance" in data || "auth" in data) return "backrest";
  const repos = Array.isArray(data.repos) ? (data.repos as Json[]) : [];
  if (repos.some((repo) => typeof repo === "object" && repo !== null && "uri" in repo)) return "backrest";
  const plans = Array.isArray(data.plans) ? (data.plans as Json[]) : [];
  if (plans.some((plan) => typeof plan === "object" && plan !== null && "paths" in plan)) return "backrest";
  return "seed";
}

/** A config as JSON text: the whole object, checked to have lists where Backrest has them. */
export function parseConfig(text: string, where: string): Json {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${where} is not valid JSON (${(error as Error).message}); not touching it`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ConfigError(`${where}: expected a JSON object with repos and plans`);
  }
  const json = data as Json;
  for (const key of ["repos", "plans"]) {
    if (key in json && !Array.isArray(json[key])) throw new ConfigError(`${where}: '${key}' must be a list`);
  }
  return json;
}

/** Read the config; a missing file is an empty one; invalid JSON is an error (the file stays untouched). */
export async function loadConfig(file: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if (isErrno(error, "ENOENT")) return { format: "seed", data: { repos: [], plans: [] }, exists: false };
    throw new ConfigError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const data = parseConfig(text, file);
  return { format: detectFormat(data), data, exists: true };
}

export function render(data: Json): string {
  return `${JSON.stringify(data, null, 2)}\n`;
}

/**
 * Seed 004's model: Backrest's config file, replaced atomically under a lock, and applied by
 * `afterWrite` (a restart of Backrest, which reads its file only when it starts).
 */
export class FileConfigStore implements ConfigStore {
  readonly kind = "file";

  constructor(
    readonly where: string,
    private readonly afterWrite?: () => Promise<void>,
  ) {}

  read(): Promise<LoadedConfig> {
    return loadConfig(this.where);
  }

  /**
   * Replace the file atomically: `config.json.new`, fsync, rename, fsync the directory; the owner
   * kept; Backrest's modno bumped. Backrest's own file keeps its mode (Backrest writes it 0600: it
   * holds repository passwords), and one we create is 0600 for the same reason. A file in the
   * seed's format is 0644, the seed's explicit rule (so the Backrest container and operators can
   * read it). A failure leaves the old file as it was (and no .new behind); the temp file is 0600
   * until it is complete.
   */
  async write(data: Json, base: LoadedConfig): Promise<undefined> {
    const next = base.format === "backrest" ? { ...data, modno: Number(base.data.modno ?? 0) + 1 } : data;
    const mode = base.format === "seed" ? 0o644 : base.exists ? undefined : 0o600;
    await writeFileAtomic(this.where, render(next), {
      temp: `${this.where}.new`,
      keepOwnership: true,
      ...(mode !== undefined ? { mode } : {}),
    });
    await this.afterWrite?.();
  }

  /** Under the kernel lock `config.json.lock`; a directory we cannot write is an error at once. */
  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    const directory = path.dirname(this.where);
    try {
      await access(directory, constants.W_OK);
    } catch (error) {
      throw new ConfigError(
        `cannot write in ${directory}: ${(error as Error).message}; config left as it is`,
      );
    }
    return withLock(`${this.where}.lock`, work, { timeoutMs: 60_000, pidFile: true });
  }
}
