import type Docker from "dockerode";
import type { Logger } from "../system/log.js";
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

/**
 * Reconcile every interval and, with events, shortly after containers come, go or change. Never
 * two reconciles at once (a request during one runs once it ends). A Docker engine that restarts
 * ends the event stream: reconnect with backoff (1 s doubling to 30 s), reconcile after reconnecting.
 * SIGTERM/SIGINT: finish the reconcile under way, exit 0.
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

    const trigger = (reason: string) => {
      if (stopping) return;
      if (running) {
        pending = true;
        return;
      }
      log.debug({ action: "reconcile.start", reason }, "reconcile");
      running = reconcile(docker, options, log, metrics)
        .catch((error: unknown) =>
          log.error({ action: "reconcile.failed", err: (error as Error).message }, "reconcile failed"),
        )
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
        const retry = () => {
          if (stopping || stream !== events) return;
          stream = undefined;
          log.warn({ action: "events.lost" }, "Docker event stream ended; reconnecting");
          schedule();
        };
        events.on("end", retry);
        events.on("error", retry);
        events.on("close", retry);
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
