import type Docker from "dockerode";
import { DockerError } from "../../system/docker.js";
import { LineReader } from "../../system/line-reader.js";
import type { Logger } from "../../system/log.js";
import { BackrestUnavailableError } from "../backrest/api.js";
import { ApiConfigStore } from "../backrest/api-store.js";
import { RememberingStore } from "../backrest/remembering-store.js";
import type { HostMetrics } from "./metrics.js";
import { enabledLabels, type ReconcileOptions, reconcile } from "./reconcile.js";
import { WatchedWorkloads } from "./watched-workloads.js";

export interface DaemonOptions {
  intervalMs: number;
  withEvents: boolean;
  /** How long after an event its reconcile starts: the events within that window cause one reconcile. */
  debounceMs?: number;
}

/** One host the daemon keeps right: its engine, how its plans are made and where they go. */
export interface FollowedHost {
  docker: Docker;
  options: ReconcileOptions;
  log: Logger;
  metrics?: HostMetrics | undefined;
}

/** What changes a host's plans: a plan depends on a container's labels, name and mounts, not on its running. */
const EVENTS = ["create", "destroy", "rename"];
const MAX_BACKOFF_MS = 30_000;

/** A failure that goes away by itself (Backrest or the engine down or restarting): retried soon. */
const passing = (error: unknown) =>
  (error instanceof BackrestUnavailableError && error.transient) || error instanceof DockerError;

/** 1 s doubling to 30 s, back to 1 s after a success. */
class Backoff {
  private ms = 1_000;
  next(): number {
    const now = this.ms;
    this.ms = Math.min(this.ms * 2, MAX_BACKOFF_MS);
    return now;
  }
  reset(): void {
    this.ms = 1_000;
  }
}

/**
 * Keep one host's plans right: reconcile every interval and, with events, shortly after its
 * containers come, go or change. Never two reconciles of a host at once (a request during one
 * runs once it ends). An engine that restarts ends the event stream: reconnect with backoff,
 * reconcile after reconnecting. A reconcile that fails because Backrest (or the engine) does not
 * answer is tried again with the same backoff, logged each time, until it works; no failure ends
 * the daemon. `stop()` finishes the reconcile under way (the call to Backrest under way, no new
 * attempt after a conflict).
 */
export function follow(host: FollowedHost, daemon: DaemonOptions): { stop(): Promise<void> } {
  const { docker, log, metrics } = host;
  let stopping = false;
  let running: Promise<unknown> | undefined;
  let pending = false;
  let debounce: NodeJS.Timeout | undefined;
  let reconnect: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  let stream: (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
  const connectBackoff = new Backoff();
  const retryBackoff = new Backoff();
  const stopped = new AbortController();
  const watched = new WatchedWorkloads(docker, enabledLabels(host.options));
  // A file has no modno check to refuse a write made from a stale copy: it is read every time.
  const remembering =
    host.options.store instanceof ApiConfigStore ? new RememberingStore(host.options.store) : undefined;
  const options = {
    ...host.options,
    store: remembering ?? host.options.store,
    signal: stopped.signal,
    workloads: () => watched.current(),
    quietUnchanged: true,
  };

  /**
   * After events, what is known is kept up: the containers the events named are looked at again
   * and Backrest's config is the one it last answered. Anything else (start, reconnect, interval,
   * retry) lists the engine whole and reads Backrest anew.
   */
  const trigger = (reason: string) => {
    if (stopping) return;
    if (reason !== "docker event" && reason !== "queued") {
      watched.forget();
      remembering?.forget();
    }
    if (running) {
      pending = true;
      return;
    }
    clearTimeout(retry);
    log.debug({ action: "reconcile.start", reason }, "reconcile");
    running = reconcile(docker, options, log, metrics)
      .then(() => retryBackoff.reset())
      .catch((error: unknown) => {
        if (!passing(error) || stopping) {
          log.error({ action: "reconcile.failed", err: (error as Error).message }, "reconcile failed");
          return;
        }
        const wait = retryBackoff.next();
        log.warn(
          { action: "reconcile.retry", err: (error as Error).message, retry_ms: wait },
          "reconcile failed; trying again",
        );
        retry = setTimeout(() => trigger("retry"), wait);
      })
      .finally(() => {
        running = undefined;
        if (pending && !stopping) {
          pending = false;
          trigger("queued");
        }
      });
  };

  const noteEvent = (line: string) => {
    try {
      const id = (JSON.parse(line) as { Actor?: { ID?: unknown } }).Actor?.ID;
      if (typeof id === "string") return watched.note(id);
    } catch {}
    // An event we cannot read may have been any change: list the engine whole.
    if (line.trim() !== "") watched.forget();
  };

  const schedule = () => {
    clearTimeout(reconnect);
    reconnect = setTimeout(connect, connectBackoff.next());
  };
  async function connect() {
    if (stopping) return;
    try {
      const events = (await docker.getEvents({
        filters: { type: ["container"], event: EVENTS },
      })) as NodeJS.ReadableStream;
      if (stopping) return (events as { destroy?: () => void }).destroy?.();
      stream = events;
      connectBackoff.reset();
      log.info({ action: "events.connected" }, "listening to Docker events");
      trigger("events connected");
      const lines = new LineReader(noteEvent);
      events.on("data", (chunk: Buffer) => {
        lines.push(chunk);
        if (debounce === undefined)
          debounce = setTimeout(() => {
            debounce = undefined;
            trigger("docker event");
          }, daemon.debounceMs ?? 50);
      });
      const reconnectLater = () => {
        if (stopping || stream !== events) return;
        stream = undefined;
        log.warn({ action: "events.lost" }, "Docker event stream ended; reconnecting");
        schedule();
      };
      events.on("end", reconnectLater);
      events.on("error", reconnectLater);
      events.on("close", reconnectLater);
    } catch (error) {
      log.warn(
        { action: "events.connect-failed", err: (error as Error).message },
        "cannot reach Docker; retrying",
      );
      schedule();
    }
  }

  const interval = setInterval(() => trigger("interval"), daemon.intervalMs);
  if (daemon.withEvents) void connect();
  else trigger("start");

  return {
    async stop() {
      stopping = true;
      stopped.abort();
      for (const timer of [debounce, reconnect, retry]) clearTimeout(timer);
      clearInterval(interval);
      const current = stream;
      stream = undefined;
      current?.destroy?.();
      await running;
    },
  };
}

/**
 * Follow every host until SIGTERM or SIGINT, hosts independent of one another (a slow or
 * unreachable host never delays another's events); then finish the reconciles under way, exit 0.
 */
export function runDaemon(
  hosts: readonly FollowedHost[],
  daemon: DaemonOptions,
  log: Logger,
): Promise<number> {
  const followers = hosts.map((host) => follow(host, daemon));
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      log.info({ action: "daemon.stop", signal }, "stopping after the reconciles under way");
      void Promise.all(followers.map((f) => f.stop())).then(() => resolve(0));
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
}
