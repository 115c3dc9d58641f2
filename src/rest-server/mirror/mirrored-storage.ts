import type { Readable } from "node:stream";
import { HttpError } from "../http-error.js";
import type { BlobType } from "../repo-path.js";
import type { ObjectRef, SaveExpect, SaveOutcome, Storage } from "../storage.js";
import type { MirrorQueue } from "./mirror-queue.js";

/**
 * The primary storage with a mirror behind it: every method is the primary's; a save is recorded
 * in the mirror's queue before it starts (the record's sync runs while the body streams in) and
 * the client's 200 waits only for that record, never for the mirror; a delete is handed to the
 * queue, which propagates it only when told to.
 */
export class MirroredStorage implements Storage {
  constructor(
    private readonly primary: Storage,
    private readonly queue: MirrorQueue,
  ) {}

  get location(): string {
    return this.primary.location;
  }

  prepare(): Promise<void> {
    return this.primary.prepare();
  }

  createRepo(repo: readonly string[]): Promise<void> {
    return this.primary.createRepo(repo);
  }

  repoExists(repo: readonly string[]): Promise<boolean> {
    return this.primary.repoExists(repo);
  }

  size(ref: ObjectRef): Promise<number | undefined> {
    return this.primary.size(ref);
  }

  list(repo: readonly string[], type: BlobType, withSizes: boolean) {
    return this.primary.list(repo, type, withSizes);
  }

  open(ref: ObjectRef, rangeHeader: string | undefined, head: boolean) {
    return this.primary.open(ref, rangeHeader, head);
  }

  read(ref: ObjectRef) {
    return this.primary.read(ref);
  }

  async readUrl(ref: ObjectRef, rangeHeader: string | undefined): Promise<string | undefined> {
    return this.primary.readUrl?.(ref, rangeHeader);
  }

  async save(ref: ObjectRef, body: Readable, expect: SaveExpect): Promise<SaveOutcome> {
    const ticket = this.queue.intend(ref);
    if (!ticket) return this.primary.save(ref, body, expect);
    // Settled either way before it is awaited: no unhandled rejection when the upload fails first.
    const recorded = ticket.durable.then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    let outcome: SaveOutcome;
    try {
      outcome = await this.primary.save(ref, body, expect);
    } catch (error) {
      ticket.cancel();
      throw error;
    }
    const failure = await recorded;
    if (failure) {
      ticket.cancel();
      // Stored, but the mirror would never hear of it: the client tries again (and then it is queued).
      throw new HttpError(503, `cannot record the object for the mirror: ${failure.message}`);
    }
    ticket.commit();
    return outcome;
  }

  async remove(ref: ObjectRef): Promise<number | undefined> {
    const removed = await this.primary.remove(ref);
    if (removed !== undefined) this.queue.deleted(ref);
    return removed;
  }

  scan() {
    return this.primary.scan();
  }

  repositories() {
    return this.primary.repositories();
  }

  storedTimes(repo: readonly string[], type: BlobType) {
    return this.primary.storedTimes(repo, type);
  }
}
