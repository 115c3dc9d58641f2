import { ConfigError } from "../../system/errors.js";
import type { BackrestApi } from "./api.js";
import type { ConfigStore, Json, LoadedConfig } from "./store.js";

/**
 * A running Backrest's config through its API: read with GetConfig, written with SetConfig, which
 * Backrest checks against the modno we read (a UI save in between makes it refuse: we read again),
 * validates, saves and reschedules at once. Nothing restarts; Backrest's file is never written by
 * us. GetConfig shows user password hashes as `********`, and SetConfig puts them back.
 */
export class ApiConfigStore implements ConfigStore {
  readonly kind = "api";
  readonly where: string;

  constructor(readonly api: BackrestApi) {
    this.where = api.where;
  }

  async read(): Promise<LoadedConfig> {
    return this.loaded(await this.api.getConfig());
  }

  /** SetConfig answers the config as Backrest now holds it (its modno bumped). */
  async write(data: Json, base: LoadedConfig): Promise<LoadedConfig> {
    const modno = base.data.modno;
    return this.loaded(await this.api.setConfig({ ...data, ...(modno !== undefined ? { modno } : {}) }));
  }

  private loaded(data: Json): LoadedConfig {
    for (const key of ["repos", "plans"])
      if (key in data && !Array.isArray(data[key]))
        throw new ConfigError(`Backrest at ${this.where} answered a config whose '${key}' is not a list`);
    return { format: "backrest", data, exists: true };
  }

  /** Backrest's modno check is what keeps writers apart here. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return work();
  }
}
