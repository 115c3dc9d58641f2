import type Docker from "dockerode";
import type { Logger } from "../../system/log.js";
import type { SidecarMetrics } from "../plans/metrics.js";
import { type ReconcileOptions, reconcile } from "../plans/reconcile.js";
import { type StatusRow, sidecarStatus } from "../plans/status.js";
import { listWorkloads } from "../workloads/discover.js";

/** One host of the fleet, ready to reconcile: its engine and its own plan options and Backrest. */
export interface FleetHost {
  name: string;
  /** Its engine's address as the targets file gives it (no secrets in it). */
  address: string;
  docker: Docker;
  options: ReconcileOptions;
}

export interface HostOutcome {
  host: string;
  status?: 0 | 2 | 3;
  error?: string;
}

/** What a host failing looks like in a message: which host, which engine, why. */
export const hostFailure = (host: FleetHost, error: unknown) =>
  `host ${host.name} (${host.address}): ${(error as Error).message}`;

/**
 * Every host reconciled at once, each into its own Backrest, independently: a host whose engine
 * or Backrest does not answer, refuses TLS or times out is named and its plans are left as they
 * were; the others are reconciled. Exit: 3 when any host failed or partly failed, else 0 when any
 * changed, else 2.
 */
export async function reconcileFleet(
  hosts: readonly FleetHost[],
  log: Logger,
  metrics?: SidecarMetrics,
): Promise<{ status: 0 | 2 | 3; outcomes: HostOutcome[] }> {
  const outcomes = await Promise.all(
    hosts.map(async (host): Promise<HostOutcome> => {
      const hostLog = log.child({ host: host.name });
      try {
        const result = await reconcile(host.docker, host.options, hostLog, metrics?.forHost(host.name));
        return { host: host.name, status: result.status };
      } catch (error) {
        const message = hostFailure(host, error);
        hostLog.error(
          { action: "host.failed", address: host.address, err: (error as Error).message },
          message,
        );
        return { host: host.name, error: message };
      }
    }),
  );
  const statuses = outcomes.map((o) => o.status);
  const status = statuses.some((s) => s === undefined || s === 3) ? 3 : statuses.includes(0) ? 0 : 2;
  return { status, outcomes };
}

export interface HostStatus {
  host: string;
  address: string;
  /** "ok", or why the engine could not be used. */
  engine: string;
  backrest: string;
  plans: StatusRow[];
}

/** Each host: its engine and Backrest reachable or why not, and (when both are) its plans. */
export async function fleetStatus(hosts: readonly FleetHost[]): Promise<HostStatus[]> {
  return Promise.all(
    hosts.map(async (host) => {
      const [engine, backrest] = await Promise.all([
        listWorkloads(host.docker, host.options.onlyLabels).then(
          () => "ok",
          (error: Error) => error.message,
        ),
        host.options.store.read().then(
          () => "ok",
          (error: Error) => error.message,
        ),
      ]);
      const plans =
        engine === "ok" && backrest === "ok" ? await sidecarStatus(host.docker, host.options) : [];
      return { host: host.name, address: host.address, engine, backrest, plans };
    }),
  );
}
