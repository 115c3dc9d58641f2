import path from "node:path";
import type { Command } from "commander";
import type Docker from "dockerode";
import type { ReconcileOptions } from "../backrest-sidecar/plans/reconcile.js";
import { type Context, docker, withMetrics } from "./backrest-sidecar-context.js";
import {
  type Flags,
  parseInterval,
  planFlags,
  reconcileFlags,
  reconcileOptions,
  stateDir,
} from "./backrest-sidecar-flags.js";
import { fleetHosts } from "./backrest-sidecar-fleet-flags.js";
import { parseSeconds } from "./program.js";

export function reconcileCommand(program: Command, ctx: Context): void {
  reconcileFlags(
    program
      .command("reconcile", { isDefault: true })
      .description("upsert the labelled containers' plans once (the default)"),
  ).action(async (flags: Flags) => {
    if (flags.targets) {
      const { reconcileFleet } = await import("../backrest-sidecar/fleet/fleet.js");
      const hosts = await fleetHosts({ ...flags, targets: flags.targets });
      const { status, outcomes } = await withMetrics(flags, (m) => reconcileFleet(hosts, ctx.log, m));
      for (const outcome of outcomes) if (outcome.error) ctx.out.error(outcome.error);
      ctx.exit(status);
      return;
    }
    const { reconcile } = await import("../backrest-sidecar/plans/reconcile.js");
    const client = await docker(flags);
    const options = await reconcileOptions(flags, client, ctx.log);
    ctx.exit(
      await withMetrics(
        flags,
        async (m) => (await reconcile(client, options, ctx.log, m?.forHost("local"))).status,
      ),
    );
  });
}

export function daemonCommand(program: Command, ctx: Context): void {
  reconcileFlags(
    program
      .command("daemon")
      .description("reconcile every --interval and, with --with-events, on container events"),
  )
    .option("--interval <duration>", "time between reconciles (60s, 5m, ...)", "60s")
    .option("--with-events", "also reconcile shortly after container create/destroy/start/die/rename")
    .option(
      "--quiesce-label <key=value>",
      "with --socket: containers stopped for a snapshot plan's snapshot",
      "restic-compose-backup.quiesce=true",
    )
    .option("--stop-timeout <seconds>", "with --socket: docker stop --time", "10")
    .option(
      "--state-dir <dir>",
      "with --socket: journals and locks [env BACKREST_SIDECAR_STATE_DIR, default /var/lib/backrest-sidecar]",
    )
    .action(async (flags: Flags) => {
      const { runDaemon } = await import("../backrest-sidecar/plans/daemon.js");
      const timing = { intervalMs: parseInterval(flags.interval), withEvents: Boolean(flags.withEvents) };
      const hosts = flags.targets
        ? await fleetHosts({ ...flags, targets: flags.targets })
        : await (async () => {
            const client = await docker(flags);
            return [
              {
                name: "local",
                address: "",
                docker: client,
                options: await reconcileOptions(flags, client, ctx.log),
              },
            ];
          })();
      // A host whose sidecar endpoint is here (its engine local, a socket given) has its own state dir.
      const endpoints = [];
      for (const host of hosts) {
        const state = flags.targets ? path.join(stateDir(flags), "hosts", host.name) : stateDir(flags);
        const endpoint = await startEndpoint(
          { ...flags, stateDir: state },
          host.options,
          host.docker,
          ctx,
          timing.intervalMs,
        );
        if (endpoint) endpoints.push(endpoint);
      }
      try {
        ctx.exit(
          await withMetrics(flags, (m) =>
            runDaemon(
              hosts.map((h) => ({
                docker: h.docker,
                options: h.options,
                log: flags.targets ? ctx.log.child({ host: h.name }) : ctx.log,
                metrics: m?.forHost(h.name),
              })),
              timing,
              ctx.log,
            ),
          ),
        );
      } finally {
        for (const endpoint of endpoints) await endpoint.close();
      }
    });
}

/**
 * With --socket, the daemon answers Backrest's hooks: what crashed runs left is cleaned up first,
 * then the endpoint serves; every --interval (at most 30 s), prepared plans whose backup Backrest
 * says is over (a Backrest that was killed or restarted runs no end hook) are finished.
 */
async function startEndpoint(
  flags: Flags,
  options: ReconcileOptions,
  client: Docker,
  ctx: Context,
  intervalMs: number,
) {
  const socket = options.plan.socket;
  if (!socket) return undefined;
  const { PlanSessions } = await import("../backrest-sidecar/host-backup/plan-session.js");
  const { serveEndpoint } = await import("../backrest-sidecar/host-backup/endpoint.js");
  const { recoverAll } = await import("../backrest-sidecar/host-backup/recover.js");
  const { ApiConfigStore } = await import("../backrest-sidecar/backrest/api-store.js");
  const { backupRunning } = await import("../backrest-sidecar/backrest/operations.js");
  const state = stateDir(flags);
  await recoverAll(client, state, ctx.log);
  const common = {
    planIdPrefix: options.plan.prefix,
    includeProject: options.plan.includeProject,
    onlyLabels: options.onlyLabels,
  };
  const sessions = new PlanSessions(
    client,
    {
      ...common,
      stateDir: state,
      volumesRoot: options.plan.volumesRoot,
      volumePrefix: options.plan.volumePrefix,
      excludeBindMounts: options.plan.excludeBindMounts,
      quiesceLabel: flags.quiesceLabel,
      stopTimeoutSeconds: parseSeconds(flags.stopTimeout, "--stop-timeout"),
    },
    ctx.log,
  );
  const api = options.store instanceof ApiConfigStore ? options.store.api : undefined;
  const endpoint = await serveEndpoint(
    client,
    sessions,
    { ...common, socket, ...(api ? { backupRunning: (planId: string) => backupRunning(api, planId) } : {}) },
    ctx.log,
  );
  const reaper = setInterval(
    () => {
      endpoint
        .reap(5_000)
        .catch((error: Error) =>
          ctx.log.error({ action: "session.reap-failed", err: error.message }, "cannot finish an idle plan"),
        );
    },
    Math.min(intervalMs, 30_000),
  );
  return {
    close: async () => {
      clearInterval(reaper);
      await endpoint.close();
    },
  };
}

export function statusCommand(program: Command, ctx: Context): void {
  planFlags(
    program.command("status").description("each labelled container, its plan id, and why a plan was skipped"),
  )
    .option("--json", "machine-readable output")
    .action(async (flags: Flags & { json?: boolean }) => {
      const { sidecarStatus, formatStatus } = await import("../backrest-sidecar/plans/status.js");
      if (flags.targets) {
        const { fleetStatus } = await import("../backrest-sidecar/fleet/fleet.js");
        const hosts = await fleetStatus(await fleetHosts({ ...flags, targets: flags.targets }));
        ctx.out.print(
          flags.json
            ? JSON.stringify(hosts, null, 2)
            : hosts
                .map((h) =>
                  [
                    `${h.host} (${h.address}): engine ${h.engine}; Backrest ${h.backrest}`,
                    ...(h.engine === "ok" && h.backrest === "ok"
                      ? formatStatus(h.plans).split("\n")
                      : []
                    ).map((line) => `  ${line}`),
                  ].join("\n"),
                )
                .join("\n"),
        );
        // An unreachable host is a partial failure, as for reconcile.
        if (hosts.some((h) => h.engine !== "ok" || h.backrest !== "ok")) ctx.exit(3);
        return;
      }
      const client = await docker(flags);
      const rows = await sidecarStatus(client, await reconcileOptions(flags, client, ctx.log));
      ctx.out.print(flags.json ? JSON.stringify(rows, null, 2) : formatStatus(rows));
    });
}
