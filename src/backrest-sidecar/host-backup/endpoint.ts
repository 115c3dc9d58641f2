import { once } from "node:events";
import { chmod, mkdir, unlink } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import type Docker from "dockerode";
import { ConfigError } from "../../system/errors.js";
import type { Logger } from "../../system/log.js";
import { listWorkloads } from "../workloads/discover.js";
import { parseHookPath, RECOVER_PATH } from "../workloads/hook-routes.js";
import { databaseEngine } from "../workloads/layout.js";
import { workloadsOfPlan } from "../workloads/select.js";
import { dumpOutput } from "./databases.js";
import { type PlanSessions, SessionError } from "./plan-session.js";

export interface EndpointOptions {
  /** The Unix socket it listens on (0600: only root, as Backrest runs, may call it). */
  socket: string;
  planIdPrefix: string;
  includeProject: boolean;
  onlyLabels: readonly string[];
  /**
   * Whether Backrest is running a backup of this plan now: true, false, or undefined when it
   * cannot tell (no API, Backrest away). Sessions are only ever dropped on a plain false.
   */
  backupRunning?: (planId: string) => Promise<boolean | undefined>;
}

export interface Endpoint {
  close(): Promise<void>;
  /** Finish prepared plans older than `minAgeMs` whose backup Backrest says is not running. */
  reap(minAgeMs: number): Promise<string[]>;
}

/** A socket file nobody answers on (a crashed sidecar's) is replaced; one in use is an error. */
async function claimSocket(socket: string): Promise<void> {
  await mkdir(path.dirname(socket), { recursive: true, mode: 0o755 });
  const inUse = await new Promise<boolean>((resolve) => {
    const probe = net.connect(socket);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (inUse)
    throw new ConfigError(`--socket ${socket}: another process already serves it (a second sidecar?)`);
  await unlink(socket).catch(() => {});
}

function reply(response: http.ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(status, { "Content-Type": "application/json" }).end(text);
}

/**
 * The endpoint Backrest's hooks call, over a Unix socket only (nothing on the network can reach
 * it; the socket is 0600, so only root may connect): prepare and finish a snapshot plan's
 * backup, stream a dump plan's dump, and (`recover`) finish every prepared plan whose backup is
 * not running.
 */
export async function serveEndpoint(
  docker: Docker,
  sessions: PlanSessions,
  options: EndpointOptions,
  log: Logger,
): Promise<Endpoint> {
  /** Finish sessions whose backup Backrest says is over (or, `force`, that it does not say is running). */
  const finishIdle = async (force: boolean, minAgeMs: number) => {
    const finished: string[] = [];
    for (const { planId, started } of sessions.open()) {
      if (Date.now() - started < minAgeMs) continue;
      const running = await options.backupRunning?.(planId);
      if (running === true || (running === undefined && !force)) continue;
      await sessions.finish(planId, force ? "recover" : "its backup is over");
      finished.push(planId);
    }
    return finished;
  };

  async function dump(planId: string, response: http.ServerResponse): Promise<void> {
    const all = await listWorkloads(docker, options.onlyLabels);
    const workload = workloadsOfPlan(all, planId, options).find((w) => w.running && databaseEngine(w));
    const engine = workload && databaseEngine(workload);
    if (!workload || !engine)
      throw new SessionError(`no running database container has plan id ${planId}`, 404);
    let started = false;
    try {
      for await (const chunk of dumpOutput(docker, workload, engine)) {
        if (!started) response.writeHead(200, { "Content-Type": "application/octet-stream" });
        started = true;
        if (!response.write(chunk)) await once(response, "drain");
        if (response.destroyed) throw new Error("the caller went away");
      }
      response.end();
      log.info(
        { action: "dump.sent", plan_id: planId, container: workload.name },
        "dump streamed to Backrest",
      );
    } catch (error) {
      // Once bytes went out, only a cut connection tells curl (and so restic) that the dump failed.
      if (started) response.destroy(error as Error);
      throw error;
    }
  }

  const server = http.createServer(async (request, response) => {
    const url = request.url ?? "";
    const route = parseHookPath(url);
    try {
      if (request.method !== "POST") return reply(response, 405, { error: "POST only" });
      if (url === RECOVER_PATH) return reply(response, 200, { finished: await finishIdle(true, 0) });
      if (!route) return reply(response, 404, { error: `no such endpoint: ${url}` });
      log.info({ action: `hook.${route.action}`, plan_id: route.planId }, "called by Backrest");
      if (route.action === "prepare") return reply(response, 200, await sessions.prepare(route.planId));
      if (route.action === "finish") {
        await sessions.finish(route.planId);
        return reply(response, 200, { planId: route.planId });
      }
      await dump(route.planId, response);
    } catch (error) {
      const message = (error as Error).message;
      log.error({ action: "hook.failed", plan_id: route?.planId, err: message }, "hook call failed");
      if (response.headersSent) return;
      const status = error instanceof SessionError ? error.status : 500;
      // For curl's -w '%header{x-stowage-error}': printable ASCII only, as a header must be.
      response.setHeader("X-Stowage-Error", message.replace(/[^\x20-\x7e]+/g, " ").slice(0, 4000));
      reply(response, status, { error: message });
    }
  });

  await claimSocket(options.socket);
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.socket, resolve);
    });
  } finally {
    process.umask(umask);
  }
  await chmod(options.socket, 0o600);
  log.info({ action: "endpoint.listening", socket: options.socket }, "serving Backrest's hooks");
  return {
    reap: (minAgeMs) => finishIdle(false, minAgeMs),
    async close() {
      server.close();
      server.closeAllConnections();
      await once(server, "close").catch(() => {});
      await unlink(options.socket).catch(() => {});
    },
  };
}
