import type Docker from "dockerode";
import { DockerError } from "../../system/docker.js";
import type { Logger } from "../../system/log.js";
import { BackrestUnavailableError } from "../backrest/api.js";
import type { SidecarMetrics } from "./metrics.js";
import { type ReconcileOptions, reconcile } from "./reconcile.js";

export interface DaemonOptions {
  intervalMs: number;
  withEvents: boolean;
  /** Events arriving within this window cause one reconcile. */
  debounceMs?: number;
}

const EVENTS = ["create", "destroy", "start", "die", "rename"];
const MAX_BACKOFF_MS = 30_000;

/** A failure that goes away by itself (Backrest or the engine down or restarting): retried soon. */
const passing = (error: unknown) =>
  (error instanceof BackrestUnavailableError && error.transient) || error instanceof DockerError;

/**
 * Reconcile every interval and, with events, shortly after containers come, go or change. Never
 * two reconciles at once (a request during one runs once it ends). A Docker engine that restarts
 * ends the event stream: reconnect with backoff (1 s doubling to 30 s), reconcile after reconnecting.
 * A reconcile that fails because Backrest (or the engine) does not answer is tried again with
 * the same backoff, logged each time, until it works; no failure ends the daemon.
 * SIGTERM/SIGINT: finish the reconcile under way (the call to Backrest under way, no new
 * attempt after a conflict), exit 0.
 */
export function runDaemon(
  docker: Docker,
  options: ReconcileOptions,
  daemon: DaemonOptions,
  log: Logger,
  metrics?: SidecarMetrics,
): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    let running: Promise<unknown> | undefined;
    let pending = false;
    let debounce: NodeJS.Timeout | undefined;
    let reconnect: NodeJS.Timeout | undefined;
    let stream: NodeJS.ReadableStream | undefined;
    let backoff = 1_000;
    let retry: NodeJS.Timeout | undefined;
    let retryBackoff = 1_000;
    const stopped = new AbortController();
    const reconcileOptions = { ...options, signal: stopped.signal };

    const trigger = (reason: string) => {
      if (stopping) return;
      if (running) {
        pending = true;
        return;
      }
      log.debug({ action: "reconcile.start", reason }, "reconcile");
      clearTimeout(retry);
      running = reconcile(docker, reconcileOptions, log, metrics)
        .then(() => {
          retryBackoff = 1_000;
        })
        .catch((error: unknown) => {
          if (!passing(error) || stopping) {
            log.error({ action: "reconcile.failed", err: (error as Error).message }, "reconcile failed");
            return;
          }
          log.warn(
            { action: "reconcile.retry", err: (error as Error).message, retry_ms: retryBackoff },
            "reconcile failed; trying again",
          );
          retry = setTimeout(() => trigger("retry"), retryBackoff);
          retryBackoff = Math.min(retryBackoff * 2, MAX_BACKOFF_MS);
        })
        .finally(() => {
          running = undefined;
          if (pending && !stopping) {
            pending = false;
            trigger("queued");
          }
        });
    };

    const connect = async () => {
      if (stopping) return;
      try {
        const events = (await docker.getEvents({
          filters: { type: ["container"], event: EVENTS },
        })) as NodeJS.ReadableStream;
        stream = events;
        backoff = 1_000;
        log.info({ action: "events.connected" }, "listening to Docker events");
        trigger("events connected");
        events.on("data", () => {
          clearTimeout(debounce);
          debounce = setTimeout(() => trigger("docker event"), daemon.debounceMs ?? 300);
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
          { action: "events.connect-failed", err: (error as Error).message, retry_ms: backoff },
          "cannot reach Docker; retrying",
        );
        schedule();
      }
    };
    const schedule = () => {
      clearTimeout(reconnect);
      reconnect = setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    };

    const interval = setInterval(() => trigger("interval"), daemon.intervalMs);
    if (daemon.withEvents) void connect();
    else trigger("start");

    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      stopped.abort();
      clearTimeout(retry);
      log.info({ action: "daemon.stop", signal }, "stopping after the reconcile under way");
      clearInterval(interval);
      clearTimeout(debounce);
      clearTimeout(reconnect);
      const current = stream as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
      stream = undefined;
      current?.destroy?.();
      void Promise.resolve(running).then(() => {
        process.off("SIGTERM", stop);
        process.off("SIGINT", stop);
        resolve(0);
      });
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
}
