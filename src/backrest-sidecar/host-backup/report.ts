import { readFile } from "node:fs/promises";
import { Gauge, Registry } from "prom-client";
import { writeFileAtomic } from "../../system/atomic-write.js";

/** One workload of a backup-once run. */
export interface WorkloadReport {
  workload: string;
  /**
   * snapshot: volumes read from btrfs snapshots; live: read as they are (quiesced containers
   * stopped meanwhile); dump: only a database dump; none: nothing was backed up.
   */
  mode: "snapshot" | "live" | "dump" | "none";
  /** restic snapshots this run made for it (volumes, dump). */
  snapshots: string[];
  files: number;
  bytesAdded: number;
  durationSeconds: number;
  /** How long its containers were stopped (stop to running again), when any was. */
  downtimeSeconds?: number;
  /** Bytes of its database dump, when it has one. */
  dumpBytes?: number;
  status: "ok" | "failed";
  error?: string;
}

export interface RunReport {
  run: string;
  started: string;
  finished: string;
  durationSeconds: number;
  status: number;
  workloads: WorkloadReport[];
  /** Per stopped container: seconds from `docker stop` to running again. */
  downtime: Array<{ container: string; seconds: number }>;
  /** Containers we stopped and could not start again. */
  leftStopped: Array<{ container: string; reason: string }>;
}

const bytes = (n: number) =>
  n < 1024
    ? `${n} B`
    : n < 1024 ** 2
      ? `${(n / 1024).toFixed(1)} KiB`
      : n < 1024 ** 3
        ? `${(n / 1024 ** 2).toFixed(1)} MiB`
        : `${(n / 1024 ** 3).toFixed(2)} GiB`;

/** Rows as columns padded to their widest cell (the last column is not padded). */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** The short table printed at the end. */
export function formatReport(report: RunReport): string {
  const rows = [
    ["workload", "mode", "files", "added", "duration", "downtime", "dump", "status"],
    ...report.workloads.map((w) => [
      w.workload,
      w.mode,
      String(w.files),
      bytes(w.bytesAdded),
      `${w.durationSeconds.toFixed(1)} s`,
      w.downtimeSeconds === undefined ? "-" : `${w.downtimeSeconds.toFixed(2)} s`,
      w.dumpBytes === undefined ? "-" : bytes(w.dumpBytes),
      w.status === "ok" ? "ok" : `FAILED: ${w.error ?? ""}`,
    ]),
  ];
  const lines = [formatTable(rows)];
  for (const c of report.downtime) lines.push(`downtime ${c.container}: ${c.seconds.toFixed(2)} s`);
  return lines.join("\n");
}

/** The last success time of each workload in an earlier metrics file (kept across failed runs). */
async function previousSuccesses(file: string): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  const text = await readFile(file, "utf8").catch(() => "");
  for (const match of text.matchAll(
    /^stowage_backup_last_success_timestamp_seconds\{workload="((?:[^"\\]|\\.)*)"\} (\S+)$/gm,
  ))
    found.set((match[1] as string).replace(/\\(.)/g, "$1"), Number(match[2]));
  return found;
}

/** node_exporter's textfile format (prom-client's text output), written atomically. */
export async function writeMetricsFile(file: string, report: RunReport): Promise<void> {
  const registry = new Registry();
  const gauge = (name: string, help: string, labels: string[] = ["workload"]) =>
    new Gauge({ name, help, labelNames: labels, registers: [registry] });
  const lastSuccess = gauge(
    "stowage_backup_last_success_timestamp_seconds",
    "Last time the workload's backup succeeded",
  );
  const success = gauge("stowage_backup_success", "1 if the workload's last backup succeeded, else 0");
  const duration = gauge("stowage_backup_duration_seconds", "Seconds the workload's backup took");
  const added = gauge("stowage_backup_bytes_added", "Bytes the workload's backup added to the repository");
  const downtime = gauge("stowage_backup_downtime_seconds", "Seconds the workload's containers were stopped");
  const run = gauge("stowage_backup_run_timestamp_seconds", "When the last backup-once run ended", []);
  const status = gauge("stowage_backup_run_status", "Exit status of the last backup-once run", []);
  const earlier = await previousSuccesses(file);
  const finished = Date.parse(report.finished) / 1000;
  for (const w of report.workloads) {
    const labels = { workload: w.workload };
    success.set(labels, w.status === "ok" ? 1 : 0);
    duration.set(labels, w.durationSeconds);
    added.set(labels, w.bytesAdded);
    if (w.downtimeSeconds !== undefined) downtime.set(labels, w.downtimeSeconds);
    const last = w.status === "ok" ? finished : earlier.get(w.workload);
    if (last !== undefined) lastSuccess.set(labels, last);
  }
  run.set(finished);
  status.set(report.status);
  await writeFileAtomic(file, await registry.metrics(), { mode: 0o644 });
}

/** The seed's exit status for work on several items: 0 none failed, 3 some, 1 all. */
export function partialStatus(failed: number, total: number): 0 | 1 | 3 {
  return failed === 0 ? 0 : failed === total ? 1 : 3;
}
