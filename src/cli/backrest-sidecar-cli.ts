import path from "node:path";
import type { Command } from "commander";
import type { BackupOnceOptions } from "../backrest-sidecar/backup-once.js";
import type { ReconcileOptions } from "../backrest-sidecar/reconcile.js";
import { ConfigError } from "../system/errors.js";
import { createLogger } from "../system/log.js";
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

function common(command: Command): Command {
  return command
    .option(
      "--config <file>",
      "Backrest's config.json [env BACKREST_CONFIG, default /etc/backrest/config.json]",
    )
    .option("--docker-sock <path>", "Docker API socket [env DOCKER_HOST, default /var/run/docker.sock]")
    .option("--docker-root <dir>", "Docker's data root (volumes live in <root>/volumes)", "/var/lib/docker")
    .option(
      "--volume-prefix <dir>",
      "where named volumes are on this host [env BACKREST_VOLUME_PREFIX, default <docker-root>/volumes]",
    )
    .option("--default-repo <id>", "repository for plans without backrest.repo (default: the config's first)")
    .option("--default-schedule <cron>", "schedule for plans without backrest.schedule", "0 2 * * *")
    .option(
      "--default-retention <spec>",
      "keep spec for plans without backrest.keep [env BACKREST_DEFAULT_RETENTION, default daily=7,weekly=4]",
    )
    .option(
      "--plan-id-prefix <prefix>",
      "prefix of every plan id the sidecar owns [env BACKREST_PLAN_ID_PREFIX, default backrest_sidecar_]",
    )
    .option("--exclude-bind-mounts", "back up named volumes only")
    .option("--include-project-name", "plan id and paths include the compose project")
    .option(
      "--only-label <key[=value]>",
      "only containers that also carry this label (repeatable)",
      collect,
      [],
    );
}

function reconcileFlags(command: Command): Command {
  return common(command)
    .option("--apply", "restart --backrest-container when the config changed")
    .option("--backrest-container <name>", "the Backrest container to restart", "backrest")
    .option("--reload-cmd <command>", "run this (sh -c) instead of restarting Backrest")
    .option("--keep-orphans", "keep our plans whose containers are gone")
    .option("--dry-run", "write nothing; log each rendered plan (exit 2)")
    .option("--metrics-listen <host:port>", "serve Prometheus counters at /metrics");
}

/** Flags beat environment variables, which beat defaults. */
function reconcileOptions(flags: Flags): ReconcileOptions {
  const env = process.env;
  const volumePrefix =
    flags.volumePrefix ?? env.BACKREST_VOLUME_PREFIX ?? path.posix.join(flags.dockerRoot, "volumes");
  return {
    config: flags.config ?? env.BACKREST_CONFIG ?? "/etc/backrest/config.json",
    plan: {
      prefix: flags.planIdPrefix ?? env.BACKREST_PLAN_ID_PREFIX ?? "backrest_sidecar_",
      includeProject: Boolean(flags.includeProjectName),
      excludeBindMounts: Boolean(flags.excludeBindMounts),
      volumePrefix,
      defaultRepo: flags.defaultRepo,
      defaultSchedule: flags.defaultSchedule,
      defaultRetention: flags.defaultRetention ?? env.BACKREST_DEFAULT_RETENTION ?? "daily=7,weekly=4",
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

async function metricsFor(flags: Flags) {
  if (!flags.metricsListen) return undefined;
  const { SidecarMetrics } = await import("../backrest-sidecar/metrics.js");
  const metrics = new SidecarMetrics();
  await metrics.listen(flags.metricsListen);
  return metrics;
}

export async function main(argv: string[]): Promise<number> {
  const log = createLogger({ name: "backrest-sidecar", pretty: false });
  let status = 0;
  const program = newProgram(
    "backrest-sidecar",
    "Docker labels -> Backrest plans; a daemon on Docker events; one-shot backups with quiesce and per-workload retention.",
  ).addHelpText(
    "after",
    "\nExit status: 0 config written, 2 nothing to change (or --dry-run), 3 some containers failed, 1 fatal.",
  );

  reconcileFlags(
    program
      .command("reconcile", { isDefault: true })
      .description("upsert the labelled containers' plans once (the default)"),
  ).action(async (flags: Flags) => {
    const { reconcile } = await import("../backrest-sidecar/reconcile.js");
    const metrics = await metricsFor(flags);
    status = (await reconcile(await docker(flags), reconcileOptions(flags), log, metrics)).status;
    if (metrics) process.exit(status);
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
      const metrics = await metricsFor(flags);
      status = await runDaemon(
        await docker(flags),
        reconcileOptions(flags),
        { intervalMs: parseInterval(flags.interval), withEvents: Boolean(flags.withEvents) },
        log,
        metrics,
      );
      process.exit(status);
    });

  common(
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
      const client = await docker(flags);
      const options: BackupOnceOptions = {
        quiesceLabel: flags.quiesceLabel,
        stopTimeoutSeconds: parseSeconds(flags.stopTimeout, "--stop-timeout"),
        excludeBindMounts: Boolean(flags.excludeBindMounts),
        includeProject: Boolean(flags.includeProjectName),
        rcbImage: flags.rcbImage,
        rcbEnvFile: flags.rcbEnvFile,
        rcbNetwork: flags.rcbNetwork,
        volumesRoot: flags.volumesRoot,
      };
      status = await backupOnce(client, await listWorkloads(client, flags.onlyLabel), options, log);
    });

  common(
    program.command("status").description("each labelled container, its plan id, and why a plan was skipped"),
  )
    .option("--json", "machine-readable output")
    .action(async (flags: Flags & { json?: boolean }) => {
      const { sidecarStatus, formatStatus } = await import("../backrest-sidecar/status.js");
      const rows = await sidecarStatus(await docker(flags), reconcileOptions(flags));
      process.stdout.write(flags.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatStatus(rows)}\n`);
    });

  await program.parseAsync(argv, { from: "user" });
  return status;
}
