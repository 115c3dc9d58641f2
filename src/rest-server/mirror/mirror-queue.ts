import type { Logger } from "../../system/log.js";
import { HttpError } from "../http-error.js";
import { type ObjectType, repoKey } from "../repo-path.js";
import type { ObjectRef, Storage } from "../storage.js";
import { copyObject } from "./copy.js";
import { Journal, type PendingSource, type QueueEntry } from "./journal.js";

/**
 * The order a repository's objects reach the mirror in, so that it is a valid repository at every
 * instant: an object waits for every object of a lower rank stored before it (its config and keys
 * first, packs before the index that names them, the index before the snapshot).
 */
const RANK: Record<ObjectType, number> = { config: 0, keys: 1, data: 2, index: 3, snapshots: 4, locks: 5 };
/** Deletes reach the mirror only for these (never config or keys: the mirror stays openable). */
const DELETED_TYPES: ReadonlySet<ObjectType> = new Set(["data", "index", "snapshots"]);
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 60_000;
const LAG_CHECK_MS = 5_000;
/** Copies wait until no client has uploaded for this long (they share the CPU and disks with them). */
const QUIET_MS = 300;
/** While the mirror lags, the warning is repeated this often. */
const LAG_REPEAT_MS = 300_000;

export interface MirrorQueueOptions {
  primary: Storage;
  mirror: Storage;
  /** Where the queue's journal lives (locked by the caller). */
  dir: string;
  /** Deletes of data, index and snapshots reach the mirror this long after they happened; undefined: never. */
  deletesAfterMs: number | undefined;
  /** Copies at a time. */
  concurrency: number;
  /** The oldest waiting copy older than this: a warning. */
  lagWarnMs: number;
  /**
   * While clients upload, copies wait, unless the oldest waiting one is older than this: then one
   * goes at a time (so a backup that runs for hours does not leave the mirror hours behind).
   */
  maxDeferMs: number;
  log: Logger;
}

interface Item {
  entry: QueueEntry;
  /** The upload it stands for is complete (replayed entries are: their upload ended one way or the other). */
  committed: boolean;
  inFlight: boolean;
}

/** Recorded for an upload before it starts; the copy may go once the upload is stored. */
export interface Ticket {
  /** Resolves once the entry is on the disk (the client may be told 200 then). */
  durable: Promise<void>;
  commit(): void;
  /** The upload failed: nothing to copy. */
  cancel(): void;
}

export interface QueueStats {
  /** Copies waiting and deletes that are due. */
  objects: number;
  /** Age of the oldest of those (0 when none). */
  oldestSeconds: number;
  /** Deletes recorded and not yet due. */
  deletesWaiting: number;
}

const refOf = (entry: QueueEntry): ObjectRef => ({
  repo: entry.repo,
  type: entry.type,
  ...(entry.name !== undefined ? { name: entry.name } : {}),
});

/**
 * Copies what clients store to the mirror, after they got their 200, through a journal that
 * survives kill -9: an object acknowledged to a client is on the mirror eventually. A mirror that
 * is down or slow only makes the queue longer (retries with backoff); clients never wait for it.
 */
export class MirrorQueue implements PendingSource {
  private readonly items = new Map<number, Item>();
  /** Each repository's items in the order they were recorded. */
  private readonly byRepo = new Map<string, Item[]>();
  private nextSeq = 1;
  private inFlight = 0;
  private backoffMs = FIRST_BACKOFF_MS;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private dueTimer: NodeJS.Timeout | undefined;
  private readonly lagTimer: NodeJS.Timeout;
  private laggingSince: number | undefined;
  private lastLagLog = 0;
  private lastError: string | undefined;
  private stopped = false;
  private journalClosed = false;
  /** Client uploads under way, and when the last one ended. */
  private uploads = 0;
  private lastUploadEnd = 0;
  private quietTimer: NodeJS.Timeout | undefined;
  private idle: (() => void) | undefined;

  private constructor(
    private readonly journal: Journal,
    private readonly options: MirrorQueueOptions,
  ) {
    this.lagTimer = setInterval(() => this.checkLag(), LAG_CHECK_MS);
    this.lagTimer.unref();
  }

  static async open(options: MirrorQueueOptions): Promise<MirrorQueue> {
    let queue: MirrorQueue | undefined;
    const source: PendingSource = {
      get size() {
        return queue?.items.size ?? 0;
      },
      entries: () => queue?.entries() ?? [],
    };
    const { journal, entries, nextSeq } = await Journal.open(options.dir, source);
    queue = new MirrorQueue(journal, options);
    queue.nextSeq = nextSeq;
    for (const entry of entries) queue.add({ entry, committed: true, inFlight: false });
    if (entries.length > 0)
      options.log.info(
        { action: "mirror.resume", queued: entries.length },
        "mirror queue resumed from its journal",
      );
    queue.pump();
    return queue;
  }

  get size(): number {
    return this.items.size;
  }

  *entries(): Iterable<QueueEntry> {
    for (const item of this.items.values()) yield item.entry;
  }

  /** Record an upload before it is stored (locks are never mirrored: undefined). */
  intend(ref: ObjectRef): Ticket | undefined {
    if (ref.type === "locks") return undefined;
    const item = this.record("copy", ref, false);
    const durable = this.journal.record(item.entry);
    this.uploads++;
    let open = true;
    const ended = () => {
      if (!open) return;
      open = false;
      this.uploads--;
      this.lastUploadEnd = Date.now();
    };
    return {
      durable,
      commit: () => {
        ended();
        item.committed = true;
        this.pump();
      },
      cancel: () => {
        ended();
        this.finish(item);
      },
    };
  }

  /** A delete on the primary: recorded for the mirror when deletes propagate and it is of a propagated type. */
  deleted(ref: ObjectRef): void {
    if (this.options.deletesAfterMs === undefined || !DELETED_TYPES.has(ref.type)) return;
    const item = this.record("delete", ref, true);
    // Not waited for: a delete that is lost leaves the mirror with more, never less.
    this.journal.record(item.entry).catch((error: unknown) => {
      this.options.log.warn(
        { action: "mirror.journal", err: (error as Error).message },
        "cannot record a delete for the mirror; the mirror keeps the object",
      );
    });
    this.pump();
  }

  private record(op: QueueEntry["op"], ref: ObjectRef, committed: boolean): Item {
    const entry: QueueEntry = {
      seq: this.nextSeq++,
      op,
      repo: [...ref.repo],
      type: ref.type,
      ...(ref.name !== undefined ? { name: ref.name } : {}),
      at: Date.now(),
    };
    const item = { entry, committed, inFlight: false };
    this.add(item);
    return item;
  }

  private add(item: Item): void {
    this.items.set(item.entry.seq, item);
    const key = repoKey(item.entry.repo);
    const list = this.byRepo.get(key);
    if (list) list.push(item);
    else this.byRepo.set(key, [item]);
  }

  private finish(item: Item): void {
    if (!this.items.delete(item.entry.seq)) return;
    const key = repoKey(item.entry.repo);
    const list = this.byRepo.get(key) ?? [];
    const at = list.indexOf(item);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.byRepo.delete(key);
    if (!this.journalClosed) this.journal.done(item.entry.seq);
  }

  private dueAt(entry: QueueEntry): number {
    return entry.op === "copy" ? entry.at : entry.at + (this.options.deletesAfterMs ?? 0);
  }

  /** The items that may go now, in the order they were recorded, at most `limit`. */
  private eligible(limit: number, now: number): Item[] {
    const found: Item[] = [];
    for (const list of this.byRepo.values()) {
      let lowestBefore = Number.POSITIVE_INFINITY;
      for (let i = 0; i < list.length && found.length < limit; i++) {
        const item = list[i] as Item;
        const { entry } = item;
        if (entry.op === "copy") {
          const rank = RANK[entry.type];
          if (item.committed && !item.inFlight && rank <= lowestBefore) found.push(item);
          lowestBefore = Math.min(lowestBefore, rank);
        } else if (i === 0 && !item.inFlight && this.dueAt(entry) <= now) found.push(item);
      }
      if (found.length >= limit) break;
    }
    return found;
  }

  private pump(): void {
    if (this.stopped) return;
    const now = Date.now();
    if (now < this.retryAt) return;
    const free = this.allowedCopies(now) - this.inFlight;
    if (free > 0) for (const item of this.eligible(free, now)) this.start(item);
    this.scheduleDue(now);
  }

  /**
   * Copies at a time now: all of them once clients are quiet; while they upload none, unless the
   * oldest waiting copy has waited longer than maxDeferMs (then one). Woken when the quiet comes.
   */
  private allowedCopies(now: number): number {
    const quietAt = this.lastUploadEnd + QUIET_MS;
    if (this.uploads === 0 && now >= quietAt) return this.options.concurrency;
    if (!this.quietTimer) {
      this.quietTimer = setTimeout(
        () => {
          this.quietTimer = undefined;
          this.pump();
        },
        Math.max(quietAt - now, QUIET_MS),
      );
      this.quietTimer.unref();
    }
    const oldest = this.oldestWaitingCopy();
    return oldest !== undefined && now - oldest > this.options.maxDeferMs ? 1 : 0;
  }

  /** When the oldest committed copy was recorded (the map keeps recording order). */
  private oldestWaitingCopy(): number | undefined {
    for (const item of this.items.values())
      if (item.entry.op === "copy" && item.committed) return item.entry.at;
    return undefined;
  }

  /** Wake up when the next waiting delete falls due (none is polled for). */
  private scheduleDue(now: number): void {
    if (this.dueTimer || this.options.deletesAfterMs === undefined) return;
    let next = Number.POSITIVE_INFINITY;
    for (const list of this.byRepo.values()) {
      const first = list[0];
      if (first?.entry.op === "delete" && !first.inFlight) next = Math.min(next, this.dueAt(first.entry));
    }
    if (next === Number.POSITIVE_INFINITY || next <= now) return;
    this.dueTimer = setTimeout(
      () => {
        this.dueTimer = undefined;
        this.pump();
      },
      Math.min(next - now, 2 ** 31 - 1),
    );
    this.dueTimer.unref();
  }

  private start(item: Item): void {
    item.inFlight = true;
    this.inFlight++;
    this.run(item.entry).then(
      (outcome) => {
        this.inFlight--;
        item.inFlight = false;
        this.backoffMs = FIRST_BACKOFF_MS;
        this.lastError = undefined;
        if (outcome !== "done")
          this.options.log.debug(
            { action: "mirror.skip", seq: item.entry.seq, outcome },
            "nothing to mirror",
          );
        this.finish(item);
        this.settle();
        this.pump();
      },
      (error: unknown) => {
        this.inFlight--;
        item.inFlight = false;
        this.failed(item, error);
        this.settle();
        this.pump();
      },
    );
  }

  private async run(entry: QueueEntry): Promise<"done" | "gone" | "still-on-primary"> {
    const { primary, mirror } = this.options;
    const ref = refOf(entry);
    if (entry.op === "copy") return (await copyObject(primary, mirror, ref)) ? "done" : "gone";
    // The object came back to the primary (uploaded again) since it was deleted: the mirror keeps it.
    if ((await primary.size(ref)) !== undefined) return "still-on-primary";
    await mirror.remove(ref);
    return "done";
  }

  private failed(item: Item, error: unknown): void {
    const { entry } = item;
    const what = `${entry.op} ${repoKey(entry.repo) || "/"} ${entry.type}${entry.name ? ` ${entry.name}` : ""}`;
    // A request the mirror refuses for what it is (not a failure of the mirror): never going to work.
    if (error instanceof HttpError && error.status < 500) {
      this.options.log.error(
        { action: "mirror.refused", what, status: error.status, err: error.message },
        "the mirror refuses this object; it is left out (mirror-verify will name it)",
      );
      this.finish(item);
      return;
    }
    this.lastError = (error as Error).message;
    const first = this.retryAt <= Date.now();
    if (first) {
      this.retryAt = Date.now() + this.backoffMs;
      this.options.log.warn(
        {
          action: "mirror.failed",
          what,
          err: this.lastError,
          retryInMs: this.backoffMs,
          queued: this.items.size,
        },
        "mirror copy failed; the queue waits and tries again",
      );
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.pump(), this.retryAt - Date.now());
      this.retryTimer.unref();
    }
  }

  stats(now = Date.now()): QueueStats {
    let objects = 0;
    let oldest = now;
    let deletesWaiting = 0;
    for (const item of this.items.values()) {
      const due = this.dueAt(item.entry);
      if (item.entry.op === "delete" && due > now) deletesWaiting++;
      else {
        objects++;
        oldest = Math.min(oldest, due);
      }
    }
    return { objects, oldestSeconds: (now - oldest) / 1000, deletesWaiting };
  }

  private checkLag(): void {
    const now = Date.now();
    const { objects, oldestSeconds } = this.stats(now);
    const lagging = oldestSeconds * 1000 > this.options.lagWarnMs;
    if (lagging && (this.laggingSince === undefined || now - this.lastLagLog >= LAG_REPEAT_MS)) {
      this.laggingSince ??= now;
      this.lastLagLog = now;
      this.options.log.warn(
        {
          action: "mirror.lagging",
          queued: objects,
          oldestSeconds: Math.round(oldestSeconds),
          ...(this.lastError ? { lastError: this.lastError } : {}),
        },
        "the mirror is lagging behind the primary",
      );
    } else if (!lagging && this.laggingSince !== undefined) {
      this.options.log.info(
        {
          action: "mirror.caught-up",
          laggedSeconds: Math.round((now - this.laggingSince) / 1000),
          queued: objects,
        },
        "the mirror caught up",
      );
      this.laggingSince = undefined;
    }
  }

  private settle(): void {
    if (this.inFlight === 0) this.idle?.();
  }

  /** Stop copying; copies under way get `graceMs` to end (the journal keeps whatever did not). */
  async close(graceMs = 5_000): Promise<void> {
    this.stopped = true;
    clearInterval(this.lagTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.dueTimer);
    clearTimeout(this.quietTimer);
    if (this.inFlight > 0)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    this.journalClosed = true;
    await this.journal.close();
  }
}
