import type { ApiConfigStore } from "./api-store.js";
import type { ConfigStore, Json, LoadedConfig } from "./store.js";

/**
 * Backrest's API answering `read()` from the config it last read or was told it wrote, until
 * `forget()`: the daemon's reconciles after events skip a GetConfig. Safe only because the API's
 * modno check refuses a write made from a config someone changed since (a UI save): a
 * refused or failed write forgets, so the retry reads Backrest anew and merges again. A change
 * made elsewhere that needs no write of ours is seen at the next read after `forget()` (the
 * daemon forgets on every interval, reconnect and retry).
 */
export class RememberingStore implements ConfigStore {
  readonly kind: ConfigStore["kind"];
  readonly where: string;
  private known: LoadedConfig | undefined;
  /** Bumped by forget(): a read that began before it is not kept. */
  private generation = 0;

  constructor(private readonly store: ApiConfigStore) {
    this.kind = store.kind;
    this.where = store.where;
  }

  forget(): void {
    this.known = undefined;
    this.generation++;
  }

  async read(): Promise<LoadedConfig> {
    if (this.known) return this.known;
    const generation = this.generation;
    const config = await this.store.read();
    if (generation === this.generation) this.known = config;
    return config;
  }

  async write(data: Json, base: LoadedConfig): Promise<LoadedConfig | undefined> {
    this.forget();
    const generation = this.generation;
    const stored = await this.store.write(data, base);
    if (stored && generation === this.generation) this.known = stored;
    return stored;
  }

  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.store.exclusive(work);
  }
}
