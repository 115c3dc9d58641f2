import { HttpError } from "./http-error.js";
import type { QuotaLimits } from "./quota-config.js";
import type { Storage } from "./storage.js";

export interface Reservation {
  /** The upload is stored: its bytes count as this instance's writes. */
  commit(): void;
  /** Give the reserved bytes back (upload failed, or the object was already there). */
  release(): void;
}

export interface UsageOptions {
  /**
   * How many servers share the storage (quotas): each may grow a scope by at most 1/N of the room
   * the last scan left under its limit, so together they never pass it. 1 for a directory.
   */
  instances: number;
}

type Bytes = Map<string, number>;

const add = (map: Bytes, repo: string, delta: number) => map.set(repo, (map.get(repo) ?? 0) + delta);
const sumWhere = (map: Bytes, inScope: (repo: string) => boolean) => {
  let sum = 0;
  for (const [repo, bytes] of map) if (inScope(repo)) sum += bytes;
  return sum;
};

/**
 * Bytes stored per repository, for quotas and metrics: a scan of the storage (at start-up, and
 * again on `scan()`), plus what this server stored and deleted since the scan began, plus uploads
 * in flight. An upload reserves its Content-Length before a byte is stored and is refused with 507
 * if that would pass a limit; concurrent uploads each hold their reservation. With N servers on
 * one storage, each sees only its own writes between scans, so it may grow a scope (the whole
 * storage, a user, a repository) by at most (limit - scanned)/N: the limit holds as long as no
 * more than N servers run (see README).
 */
export class UsageTracker {
  private scanned: Bytes = new Map();
  /** This server's stored minus deleted bytes since the last scan began. */
  private own: Bytes = new Map();
  /** The same since a scan under way began (becomes `own` when it ends). */
  private ownDuringScan: Bytes | undefined;
  private readonly inFlight: Bytes = new Map();

  constructor(
    private readonly storage: Storage,
    private readonly limits: QuotaLimits,
    private readonly options: UsageOptions = { instances: 1 },
  ) {}

  /** List the storage and take its sizes as the new base (writes made meanwhile are counted once more at worst). */
  async scan(): Promise<void> {
    const during: Bytes = new Map();
    this.ownDuringScan = during;
    try {
      const found: Bytes = new Map();
      for await (const batch of this.storage.scan())
        for (const { repo, size } of batch) add(found, repo, size);
      this.scanned = found;
      this.own = during;
    } finally {
      this.ownDuringScan = undefined;
    }
  }

  private changed(repo: string, delta: number): void {
    add(this.own, repo, delta);
    if (this.ownDuringScan) add(this.ownDuringScan, repo, delta);
  }

  repos(): string[] {
    return [...new Set([...this.scanned.keys(), ...this.own.keys()])].sort();
  }

  repoBytes(repo: string): number {
    return Math.max(0, (this.scanned.get(repo) ?? 0) + (this.own.get(repo) ?? 0));
  }

  totalBytes(): number {
    return Math.max(0, sumWhere(this.scanned, () => true) + sumWhere(this.own, () => true));
  }

  /** Reserve room for an upload of `size` bytes into `repo`, or throw 507 naming the limit hit. */
  reserve(repo: readonly string[], size: number): Reservation {
    const key = repo.join("/");
    const user = repo[0];
    const scopes: Array<{ limit: number | undefined; inScope: (r: string) => boolean; message: string }> = [
      { limit: this.limits.total, inScope: () => true, message: "server storage limit reached" },
      ...(user === undefined
        ? []
        : [
            {
              limit: this.limits.users.get(user),
              inScope: (r: string) => r === user || r.startsWith(`${user}/`),
              message: `storage limit of user ${user} reached`,
            },
          ]),
      {
        limit: this.limits.repos.get(key),
        inScope: (r: string) => r === key,
        message: `storage limit of repository ${key || "/"} reached`,
      },
    ];
    const n = this.options.instances;
    for (const { limit, inScope, message } of scopes) {
      if (limit === undefined) continue;
      const base = sumWhere(this.scanned, inScope);
      const growth = sumWhere(this.own, inScope) + sumWhere(this.inFlight, inScope) + size;
      if (base + n * growth > limit) throw new HttpError(507, message);
    }
    add(this.inFlight, key, size);
    let open = true;
    const end = (stored: boolean) => {
      if (!open) return;
      open = false;
      add(this.inFlight, key, -size);
      if (stored) this.changed(key, size);
    };
    return { commit: () => end(true), release: () => end(false) };
  }

  removed(repo: readonly string[], size: number): void {
    this.changed(repo.join("/"), -size);
  }
}
