import path from "node:path";
import type { Command } from "commander";
import { backrestCron } from "../backrest-sidecar/cron.js";
import { parseKeep } from "../backrest-sidecar/keep.js";
import type { SidecarMetrics } from "../backrest-sidecar/metrics.js";
import type { ReconcileOptions } from "../backrest-sidecar/reconcile.js";
import { ConfigError } from "../system/errors.js";
import { createLogger } from "../system/log.js";
import { output } from "./output.js";
import { newProgram, parseSeconds } from "./program.js";

interface Flags {
  config?: string;
  apply?: boolean;
  backrestContainer: string;
  dockerSock?: string;
  dockerRoot: string;
  volumePrefix?: string;
  defaultRepo?: string;
  defaultSchedule: string;
  defaultRetention?: string;
  planIdPrefix?: string;
  excludeBindMounts?: boolean;
  includeProjectName?: boolean;
  dryRun?: boolean;
  keepOrphans?: boolean;
  reloadCmd?: string;
  metricsListen?: string;
  onlyLabel: string[];
  interval: string;
  withEvents?: boolean;
  rcbImage?: string;
  rcbEnvFile?: string;
  rcbNetwork?: string;
  quiesceLabel: string;
  stopTimeout: string;
  volumesRoot: string;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Every subcommand: which engine, which containers, how their mounts are seen from here. */
function engineFlags(command: Command): Command {
  return command
    .option("--docker-sock <path>", "Docker API socket [env DOCKER_HOST, default /var/run/docker.sock]")
    .option("--docker-root <dir>", "Docker's data root (volumes live in <root>/volumes)", "/var/lib/docker")
    .option(
      "--volume-prefix <dir>",
      "where named volumes are on this host [env BACKREST_VOLUME_PREFIX, default <docker-root>/volumes]",
    )
    .option("--exclude-bind-mounts", "back up named volumes only")
    .option("--include-project-name", "plan ids and paths include the compose project")
    .option(
      "--only-label <key[=value]>",
      "only containers that also carry this label (repeatable)",
      collect,
      [],
    )
    .option(
      "--default-retention <spec>",
      "keep spec for workloads without backrest.keep [env BACKREST_DEFAULT_RETENTION, default daily=7,weekly=4]",
    );
}

/** reconcile, daemon and status: the Backrest config and how plans are made. */
function planFlags(command: Command): Command {
  return engineFlags(command)
    .option(
      "--config <file>",
      "Backrest's config.json [env BACKREST_CONFIG, default /etc/backrest/config.json]",
    )
    .option("--default-repo <id>", "repository for plans without backrest.repo (default: the config's first)")
    .option("--default-schedule <cron>", "schedule for plans without backrest.schedule", "0 2 * * *")
    .option(
      "--plan-id-prefix <prefix>",
      "prefix of every plan id the sidecar owns [env BACKREST_PLAN_ID_PREFIX, default backrest_sidecar_]",
    );
}

function reconcileFlags(command: Command): Command {
  return planFlags(command)
    .option("--apply", "restart --backrest-container when the config changed")
    .option("--backrest-container <name>", "the Backrest container to restart", "backrest")
    .option("--reload-cmd <command>", "run this (sh -c) instead of restarting Backrest")
    .option("--keep-orphans", "keep our plans whose containers are gone")
    .option("--dry-run", "write nothing; log each rendered plan (exit 2)")
    .option("--metrics-listen <host:port>", "serve Prometheus counters at /metrics");
}

/** The same defaults for every subcommand: flags beat environment variables, which beat defaults. */
function volumePrefix(flags: Flags): string {
  return (
    flags.volumePrefix ?? process.env.BACKREST_VOLUME_PREFIX ?? path.posix.join(flags.dockerRoot, "volumes")
  );
}

/** A default that is wrong is wrong for every container: one error naming the flag, before anything. */
function checked<T>(flag: string, value: string, check: (value: string) => T): string {
  try {
    check(value);
  } catch (error) {
    throw new ConfigError(`${flag} ${value}: ${(error as Error).message}`);
  }
  return value;
}

function defaultRetention(flags: Flags): string {
  const spec = flags.defaultRetention ?? process.env.BACKREST_DEFAULT_RETENTION ?? "daily=7,weekly=4";
  return checked("--default-retention", spec, parseKeep);
}

/** Plans with this prefix are ours (replaced, removed as orphans): it may not be empty. */
function planIdPrefix(flags: Flags): string {
  const prefix = flags.planIdPrefix ?? process.env.BACKREST_PLAN_ID_PREFIX ?? "backrest_sidecar_";
  if (!/^[A-Za-z0-9_.-]+$/.test(prefix))
    throw new ConfigError(
      `--plan-id-prefix '${prefix}': expected letters, digits, '_', '.' or '-' (and not empty: it marks the plans the sidecar owns)`,
    );
  return prefix;
}

function reconcileOptions(flags: Flags): ReconcileOptions {
  const env = process.env;
  return {
    config: flags.config ?? env.BACKREST_CONFIG ?? "/etc/backrest/config.json",
    plan: {
      prefix: planIdPrefix(flags),
      includeProject: Boolean(flags.includeProjectName),
      excludeBindMounts: Boolean(flags.excludeBindMounts),
      volumePrefix: volumePrefix(flags),
      defaultRepo: flags.defaultRepo,
      defaultSchedule: checked("--default-schedule", flags.defaultSchedule, backrestCron),
      defaultRetention: defaultRetention(flags),
    },
    dryRun: Boolean(flags.dryRun),
    apply: Boolean(flags.apply),
    backrestContainer: flags.backrestContainer,
    reloadCmd: flags.reloadCmd,
    keepOrphans: Boolean(flags.keepOrphans),
    onlyLabels: flags.onlyLabel,
  };
}

/** "60s", "5m", "1h" or plain seconds. */
function parseInterval(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!match) throw new ConfigError(`--interval ${value}: expected e.g. 60s, 5m, 1h`);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? "s"] as number;
  const ms = Number(match[1]) * factor;
  if (ms < 1000) throw new ConfigError(`--interval ${value}: at least 1s`);
  return ms;
}

async function docker(flags: Flags) {
  const { dockerClient } = await import("../system/docker.js");
  return dockerClient(flags.dockerSock);
}

/** The metrics server, if asked for; closed when the command is done. */
async function withMetrics<T>(
  flags: Flags,
  work: (metrics: SidecarMetrics | undefined) => Promise<T>,
): Promise<T> {
  if (!flags.metricsListen) return work(undefined);
  const { SidecarMetrics } = await import("../backrest-sidecar/metrics.js");
  const metrics = new SidecarMetrics();
  const server = await metrics.listen(flags.metricsListen);
  try {
    return await work(metrics);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

export async function main(argv: string[]): Promise<number> {
  const log = createLogger({ name: "backrest-sidecar", pretty: false });
  const { print } = output("backrest-sidecar");
  let status = 0;
  const program = newProgram(
    "backrest-sidecar",
    "Docker labels -> Backrest plans; a daemon on Docker events; one-shot backups with quiesce and per-workload retention.",
  ).addHelpText(
    "after",
    "\nExit status: 0 done, 2 nothing to change (or --dry-run), 3 some containers or workloads failed, 1 fatal.",
  );

  reconcileFlags(
    program
      .command("reconcile", { isDefault: true })
      .description("upsert the labelled containers' plans once (the default)"),
  ).action(async (flags: Flags) => {
    const { reconcile } = await import("../backrest-sidecar/reconcile.js");
    const client = await docker(flags);
    status = await withMetrics(
      flags,
      async (metrics) => (await reconcile(client, reconcileOptions(flags), log, metrics)).status,
    );
  });

  reconcileFlags(
    program
      .command("daemon")
      .description("reconcile every --interval and, with --with-events, on container events"),
  )
    .option("--interval <duration>", "time between reconciles (60s, 5m, ...)", "60s")
    .option("--with-events", "also reconcile shortly after container create/destroy/start/die/rename")
    .action(async (flags: Flags) => {
      const { runDaemon } = await import("../backrest-sidecar/daemon.js");
      const client = await docker(flags);
      const timing = { intervalMs: parseInterval(flags.interval), withEvents: Boolean(flags.withEvents) };
      status = await withMetrics(flags, (metrics) =>
        runDaemon(client, reconcileOptions(flags), timing, log, metrics),
      );
    });

  engineFlags(
    program
      .command("backup-once")
      .description("stop quiesced containers, back up, start them again, forget per backrest.keep"),
  )
    .option(
      "--rcb-image <image>",
      "run restic-compose-backup's one-shot container (else the native engine runs restic itself)",
    )
    .option("--rcb-env-file <file>", "RESTIC_* settings (docker --env-file syntax)")
    .option("--rcb-network <network>", "docker network for the rcb container (default: Docker's default)")
    .option(
      "--quiesce-label <key=value>",
      "containers to stop meanwhile",
      "restic-compose-backup.quiesce=true",
    )
    .option("--stop-timeout <seconds>", "docker stop --time", "10")
    .option("--volumes-root <dir>", "where the native engine mounts volumes (rcb's layout)", "/volumes")
    .action(async (flags: Flags) => {
      const { backupOnce } = await import("../backrest-sidecar/backup-once.js");
      const { listWorkloads } = await import("../backrest-sidecar/workloads.js");
      const { interruptible } = await import("../system/signals.js");
      const client = await docker(flags);
      const stopTimeoutSeconds = parseSeconds(flags.stopTimeout, "--stop-timeout");
      const workloads = await listWorkloads(client, flags.onlyLabel);
      const onSignal = (signal: NodeJS.Signals, first: boolean) =>
        log.warn(
          { action: "backup.signal", signal },
          first ? "stopping: restic is stopped, quiesced containers are started again" : "already stopping",
        );
      const result = await interruptible(
        (signal) =>
          backupOnce(
            client,
            workloads,
            {
              quiesceLabel: flags.quiesceLabel,
              stopTimeoutSeconds,
              excludeBindMounts: Boolean(flags.excludeBindMounts),
              includeProject: Boolean(flags.includeProjectName),
              rcbImage: flags.rcbImage,
              rcbEnvFile: flags.rcbEnvFile,
              rcbNetwork: flags.rcbNetwork,
              volumesRoot: flags.volumesRoot,
              volumePrefix: volumePrefix(flags),
              defaultRetention: defaultRetention(flags),
              signal,
            },
            log,
          ),
        onSignal,
      );
      for (const failed of result.results.filter((r) => !r.ok))
        print(`failed: ${failed.workload}: ${failed.error}`);
      status = result.status;
    });

  planFlags(
    program.command("status").description("each labelled container, its plan id, and why a plan was skipped"),
  )
    .option("--json", "machine-readable output")
    .action(async (flags: Flags & { json?: boolean }) => {
      const { sidecarStatus, formatStatus } = await import("../backrest-sidecar/status.js");
      const rows = await sidecarStatus(await docker(flags), reconcileOptions(flags));
      print(flags.json ? JSON.stringify(rows, null, 2) : formatStatus(rows));
    });

  await program.parseAsync(argv, { from: "user" });
  return status;
}
