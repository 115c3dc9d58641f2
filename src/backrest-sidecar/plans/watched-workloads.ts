import type Docker from "dockerode";
import { byName, listWorkloads, type Workload } from "../workloads/discover.js";

/**
 * One engine's labelled containers as the daemon knows them: listed whole once, then kept up by
 * its events, so that a reconcile after an event looks at the containers the events named instead
 * of listing the engine again. Whatever may have been missed (the first call, a lost event stream,
 * a failed call, every interval) is listed whole again after `forget()`.
 */
export class WatchedWorkloads {
  private known: Map<string, Workload> | undefined;
  private named = new Set<string>();
  /** Bumped by forget(): a listing that began before it is not kept. */
  private generation = 0;

  constructor(
    private readonly docker: Docker,
    private readonly labels: readonly string[],
  ) {}

  /** A container the engine says was created, renamed or removed: looked at again before the next reconcile. */
  note(containerId: string): void {
    this.named.add(containerId);
  }

  /** List the engine whole next time. */
  forget(): void {
    this.known = undefined;
    this.generation++;
  }

  /** The labelled containers now, sorted as listWorkloads sorts them. */
  async current(): Promise<Workload[]> {
    const named = [...this.named];
    this.named.clear();
    const generation = this.generation;
    try {
      const known = this.known;
      if (!known) {
        const listed = await listWorkloads(this.docker, this.labels);
        if (generation === this.generation) this.known = new Map(listed.map((w) => [w.id, w]));
        return listed;
      }
      if (named.length > 0) {
        const found = new Map((await listWorkloads(this.docker, this.labels, named)).map((w) => [w.id, w]));
        for (const id of named) {
          const workload = found.get(id);
          if (workload) known.set(id, workload);
          else known.delete(id);
        }
      }
      return [...known.values()].sort(byName);
    } catch (error) {
      this.forget();
      throw error;
    }
  }
}
