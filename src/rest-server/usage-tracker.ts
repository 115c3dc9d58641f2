import { lstat, readdir, unlink } from "node:fs/promises";
import path from "node:path";
import { isTempName } from "./blob-store.js";
import { HttpError } from "./http-error.js";
import type { QuotaLimits } from "./quota-config.js";
import { MAX_REPO_DEPTH } from "./repo-path.js";

const TYPE_DIRS = new Set(["config", "data", "index", "keys", "locks", "snapshots"]);

export interface Reservation {
  /** Give the reserved bytes back (upload failed, or the object was already there). */
  release(): void;
}

/**
 * Bytes stored per repository, kept current as uploads and deletes happen, so quotas can be enforced
 * before a byte is written: an upload reserves its Content-Length first, and is refused with 507 if
 * that would pass any limit. Concurrent uploads each hold their reservation, so the sum never
 * exceeds a limit, even mid-stream.
 */
export class UsageTracker {
  private readonly bytes = new Map<string, number>();

  constructor(
    private readonly root: string,
    private readonly limits: QuotaLimits,
  ) {}

  /** Walk the store once at start-up; leftover temp files of a crashed run are removed. */
  async scan(): Promise<{ removedTempFiles: number }> {
    let removed = 0;
    const walk = async (dir: string, segments: string[]): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          await walk(full, [...segments, entry.name]);
        } else if (entry.isFile() && isTempName(entry.name)) {
          await unlink(full).catch(() => {});
          removed++;
        } else if (entry.isFile()) {
          const repo = repoOf([...segments, entry.name]);
          const info = repo === undefined ? undefined : await lstat(full).catch(() => undefined);
          if (repo !== undefined && info) this.add(repo, info.size);
        }
      }
    };
    await walk(this.root, []);
    return { removedTempFiles: removed };
  }

  private add(repo: string, delta: number): void {
    this.bytes.set(repo, Math.max(0, (this.bytes.get(repo) ?? 0) + delta));
  }

  repos(): string[] {
    return [...this.bytes.keys()];
  }

  repoBytes(repo: string): number {
    return this.bytes.get(repo) ?? 0;
  }

  private userBytes(user: string): number {
    let sum = 0;
    for (const [repo, bytes] of this.bytes) if (repo === user || repo.startsWith(`${user}/`)) sum += bytes;
    return sum;
  }

  totalBytes(): number {
    let sum = 0;
    for (const bytes of this.bytes.values()) sum += bytes;
    return sum;
  }

  /** Reserve room for an upload of `size` bytes into `repo`, or throw 507 naming the limit hit. */
  reserve(repo: readonly string[], size: number): Reservation {
    const key = repo.join("/");
    const over = (used: number, limit: number | undefined) => limit !== undefined && used + size > limit;
    if (over(this.totalBytes(), this.limits.total)) throw new HttpError(507, "server storage limit reached");
    const user = repo[0];
    if (user !== undefined && over(this.userBytes(user), this.limits.users.get(user))) {
      throw new HttpError(507, `storage limit of user ${user} reached`);
    }
    if (over(this.repoBytes(key), this.limits.repos.get(key))) {
      throw new HttpError(507, `storage limit of repository ${key || "/"} reached`);
    }
    this.add(key, size);
    let released = false;
    return {
      release: () => {
        if (!released) this.add(key, -size);
        released = true;
      },
    };
  }

  removed(repo: readonly string[], size: number): void {
    this.add(repo.join("/"), -size);
  }
}

/** The repository a stored file belongs to, from its path segments under the root. */
function repoOf(segments: readonly string[]): string | undefined {
  const typeIndex = segments.findIndex((segment) => TYPE_DIRS.has(segment));
  if (typeIndex < 0 || typeIndex > MAX_REPO_DEPTH) return undefined;
  return segments.slice(0, typeIndex).join("/");
}
