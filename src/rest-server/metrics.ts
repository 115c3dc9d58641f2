import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { MirrorQueue, QueueStats } from "./mirror/mirror-queue.js";
import type { Storage } from "./storage.js";
import type { UsageTracker } from "./usage-tracker.js";

export type BlobEvent = "read" | "write" | "delete";
export interface BlobLabels {
  user: string;
  repo: string;
  type: string;
}

/** The Go server's six blob counters, plus repository size and last-snapshot time gauges. */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly counts: Record<BlobEvent, Counter<keyof BlobLabels>>;
  private readonly bytes: Record<BlobEvent, Counter<keyof BlobLabels>>;

  constructor(storage: Storage, usage: UsageTracker | undefined, mirror?: MirrorQueue) {
    const labelNames = ["user", "repo", "type"] as const;
    const counter = (name: string, help: string) =>
      new Counter({ name, help, labelNames, registers: [this.registry] });
    this.counts = {
      read: counter("rest_server_blob_read_total", "Total number of blobs read"),
      write: counter("rest_server_blob_write_total", "Total number of blobs written"),
      delete: counter("rest_server_blob_delete_total", "Total number of blobs deleted"),
    };
    this.bytes = {
      read: counter("rest_server_blob_read_bytes_total", "Total number of bytes read from blobs"),
      write: counter("rest_server_blob_write_bytes_total", "Total number of bytes written to blobs"),
      delete: counter("rest_server_blob_delete_bytes_total", "Total number of bytes of blobs deleted"),
    };
    if (usage) {
      new Gauge({
        name: "rest_server_repo_size_bytes",
        help: "Bytes stored in each repository",
        labelNames: ["repo"],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const repo of usage.repos()) this.set({ repo: displayRepo(repo) }, usage.repoBytes(repo));
        },
      });
      new Gauge({
        name: "rest_server_repo_last_snapshot_timestamp_seconds",
        help: "Modification time of the newest snapshot file of each repository (Unix seconds)",
        labelNames: ["repo"],
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const repo of usage.repos()) {
            const times = await storage.storedTimes(repo === "" ? [] : repo.split("/"), "snapshots");
            let newest: number | undefined;
            for (const time of times.values()) newest = Math.max(newest ?? time, time);
            if (newest !== undefined) this.set({ repo: displayRepo(repo) }, newest / 1000);
          }
        },
      });
    }
    if (mirror) mirrorGauges(this.registry, mirror);
    collectDefaultMetrics({ register: this.registry });
  }

  record(event: BlobEvent, labels: BlobLabels, bytes: number): void {
    this.counts[event].inc(labels);
    this.bytes[event].inc(labels, bytes);
  }
}

/** The mirror's queue: its depth and age (what is due: deletes waiting for their time apart). */
function mirrorGauges(registry: Registry, mirror: MirrorQueue): void {
  const gauge = (name: string, help: string, value: (stats: QueueStats) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value(mirror.stats()));
      },
    });
  gauge(
    "rest_server_mirror_queue_objects",
    "Objects waiting to be copied to (or deleted from) the mirror",
    (s) => s.objects,
  );
  gauge(
    "rest_server_mirror_queue_oldest_seconds",
    "Age of the oldest object waiting for the mirror (0 when none)",
    (s) => s.oldestSeconds,
  );
  gauge(
    "rest_server_mirror_deletes_waiting",
    "Deletes recorded for the mirror and not yet due (--mirror-deletes-after)",
    (s) => s.deletesWaiting,
  );
}

function displayRepo(repo: string): string {
  return `/${repo}`;
}
