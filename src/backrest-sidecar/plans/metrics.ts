import http from "node:http";
import { Counter, Registry } from "prom-client";
import { parseHostPort } from "../../system/address.js";

/** Prometheus counters (`--metrics-listen`): plans, changes, errors, skipped. */
export class SidecarMetrics {
  readonly registry = new Registry();
  private readonly reconciles = new Counter({
    name: "backrest_sidecar_reconciles_total",
    help: "Reconcile runs",
    registers: [this.registry],
  });
  private readonly plans = new Counter({
    name: "backrest_sidecar_plans_total",
    help: "Plans rendered, summed over reconciles",
    registers: [this.registry],
  });
  private readonly changes = new Counter({
    name: "backrest_sidecar_changes_total",
    help: "Config writes",
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: "backrest_sidecar_errors_total",
    help: "Containers whose plan failed",
    registers: [this.registry],
  });
  private readonly skipped = new Counter({
    name: "backrest_sidecar_skipped_total",
    help: "Plans skipped (unknown repository)",
    registers: [this.registry],
  });

  record(result: { plansSeen: number; errors: number; skipped: number }, wrote: boolean): void {
    this.reconciles.inc();
    this.plans.inc(result.plansSeen);
    if (wrote) this.changes.inc();
    this.errors.inc(result.errors);
    this.skipped.inc(result.skipped);
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
