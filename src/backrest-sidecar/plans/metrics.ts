import http from "node:http";
import { Counter, Registry } from "prom-client";
import { parseHostPort } from "../../system/address.js";

/** What one host's reconciles count into. */
export interface HostMetrics {
  record(result: { plansSeen: number; errors: number; skipped: number }, wrote: boolean): void;
}

/** Prometheus counters (`--metrics-listen`): plans, changes, errors, skipped; per host (`host`). */
export class SidecarMetrics {
  readonly registry = new Registry();
  private readonly reconciles = new Counter({
    name: "backrest_sidecar_reconciles_total",
    help: "Reconcile runs",
    labelNames: ["host"],
    registers: [this.registry],
  });
  private readonly plans = new Counter({
    name: "backrest_sidecar_plans_total",
    help: "Plans rendered, summed over reconciles",
    labelNames: ["host"],
    registers: [this.registry],
  });
  private readonly changes = new Counter({
    name: "backrest_sidecar_changes_total",
    help: "Config writes",
    labelNames: ["host"],
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: "backrest_sidecar_errors_total",
    help: "Containers whose plan failed",
    labelNames: ["host"],
    registers: [this.registry],
  });
  private readonly skipped = new Counter({
    name: "backrest_sidecar_skipped_total",
    help: "Plans skipped (unknown repository)",
    labelNames: ["host"],
    registers: [this.registry],
  });

  /** A host's counters (`host="local"` for the single-host mode), present at 0 from the start. */
  forHost(host: string): HostMetrics {
    const labels = { host };
    for (const counter of [this.reconciles, this.plans, this.changes, this.errors, this.skipped])
      counter.inc(labels, 0);
    return {
      record: (result, wrote) => {
        this.reconciles.inc(labels);
        this.plans.inc(labels, result.plansSeen);
        if (wrote) this.changes.inc(labels);
        this.errors.inc(labels, result.errors);
        this.skipped.inc(labels, result.skipped);
      },
    };
  }

  /** Serve /metrics on host:port (`:port`: every address; `[::1]:port` for IPv6). */
  listen(address: string): Promise<http.Server> {
    const { host, port } = parseHostPort(address, "--metrics-listen");
    const server = http.createServer(async (req, res) => {
      if (req.url !== "/metrics") {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "Content-Type": this.registry.contentType }).end(await this.registry.metrics());
    });
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve(server));
    });
  }
}
