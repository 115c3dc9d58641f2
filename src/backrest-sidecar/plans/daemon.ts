import type Docker from "dockerode";
import { DockerError } from "../../system/docker.js";
import type { Logger } from "../../system/log.js";
import { BackrestUnavailableError } from "../backrest/api.js";
import type { HostMetrics } from "./metrics.js";
import { type ReconcileOptions, reconcile } from "./reconcile.js";

export interface DaemonOptions {
  intervalMs: number;
  withEvents: boolean;
  /** Events arriving within this window cause one reconcile. */
  debounceMs?: number;
}

/** One host the daemon keeps right: its engine, how its plans are made and where they go. */
export interface FollowedHost {
  docker: Docker;
  options: ReconcileOptions;
  log: Logger;
  metrics?: HostMetrics | undefined;
}

const EVENTS = ["create", "destroy", "start", "die", "rename"];
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
  const options = { ...host.options, signal: stopped.signal };

  const trigger = (reason: string) => {
    if (stopping) return;
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
      events.on("data", () => {
        clearTimeout(debounce);
        debounce = setTimeout(() => trigger("docker event"), daemon.debounceMs ?? 100);
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
