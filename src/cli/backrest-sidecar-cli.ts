import os from "node:os";
import path from "node:path";
import { type Command, Option } from "commander";
import { backrestCron } from "../backrest-sidecar/cron.js";
import { parseKeep } from "../backrest-sidecar/keep.js";
import type { SidecarMetrics } from "../backrest-sidecar/metrics.js";
import type { ReconcileOptions } from "../backrest-sidecar/reconcile.js";
import { ConfigError } from "../system/errors.js";
import { createLogger, type Logger } from "../system/log.js";
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
  snapshot: string;
  stateDir?: string;
  report?: string;
  metricsFile?: string;
  notifyUrl: string[];
  forget: boolean;
  recover?: boolean;
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

/** backup-once and restore: the engine's flags, restic's settings, how containers are stopped. */
function backupFlags(command: Command): Command {
  return engineFlags(command)
    .option("--rcb-env-file <file>", "RESTIC_* settings (docker --env-file syntax)")
    .option("--stop-timeout <seconds>", "docker stop --time", "10")
    .option("--volumes-root <dir>", "where the native engine mounts volumes (rcb's layout)", "/volumes")
    .option(
      "--state-dir <dir>",
      "journals and locks [env BACKREST_SIDECAR_STATE_DIR, default /var/lib/backrest-sidecar]",
    );
}

/** restore and verify name workloads, also by plan id. */
function planIdPrefixFlag(command: Command): Command {
  return command.option(
    "--plan-id-prefix <prefix>",
    "prefix of plan ids, to find a workload by its plan id [env BACKREST_PLAN_ID_PREFIX, default backrest_sidecar_]",
  );
}

/** What restore and verify start from: the engine, restic's settings, the labelled containers. */
async function resticWorld(flags: Flags) {
  const { resticEnvironment } = await import("../backrest-sidecar/restic.js");
  const { listWorkloads } = await import("../backrest-sidecar/workloads.js");
  const client = await docker(flags);
  const env = await resticEnvironment(flags.rcbEnvFile);
  return { client, env, workloads: await listWorkloads(client, flags.onlyLabel) };
}

function stateDir(flags: Flags): string {
  return flags.stateDir ?? process.env.BACKREST_SIDECAR_STATE_DIR ?? "/var/lib/backrest-sidecar";
}

/** Work that SIGINT/SIGTERM/SIGHUP stop at a safe point (logged; the run then exits 128+N). */
async function interruptibly<T>(
  log: Logger,
  what: string,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const { interruptible } = await import("../system/signals.js");
  return interruptible(work, (signal, first) =>
    log.warn(
      { action: `${what}.signal`, signal },
      first ? "stopping: restic is stopped, stopped containers are started again" : "already stopping",
    ),
  );
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
  const { print, error } = output("backrest-sidecar");
  let status = 0;
  /** `recover` (and `backup-once --recover`): exit 75 while a journal waits for its filesystem. */
  const recover = async (flags: Flags): Promise<number> => {
    const { recoverAll } = await import("../backrest-sidecar/recover.js");
    const client = await docker(flags);
    const done = await interruptibly(log, "recover", (signal) =>
      recoverAll(client, stateDir(flags), log, signal),
    );
    const started = done.started.length > 0 ? ` (${done.started.join(", ")})` : "";
    print(
      `removed ${done.removed} snapshot(s) of crashed runs; finished ${done.restores} interrupted restore(s); started ${done.started.length} container(s) left stopped${started}`,
    );
    for (const waiting of done.waiting)
      error(`${waiting.journal}: its filesystem ${waiting.uuid} is not attached; kept for a later recover`);
    return done.waiting.length > 0 ? 75 : 0;
  };
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

  backupFlags(
    program
      .command("backup-once")
      .description(
        "dump databases, stop quiesced containers only for btrfs snapshots (or for the backup), back up, start them again, forget per backrest.keep",
      ),
  )
    .option(
      "--rcb-image <image>",
      "run restic-compose-backup's one-shot container (else the native engine runs restic itself)",
    )
    .option("--rcb-network <network>", "docker network for the rcb container (default: Docker's default)")
    .option(
      "--quiesce-label <key=value>",
      "containers to stop meanwhile",
      "restic-compose-backup.quiesce=true",
    )
    .addOption(
      new Option(
        "--snapshot <mode>",
        "read volumes from btrfs snapshots: auto (where all are on btrfs), btrfs (always), off",
      )
        .choices(["auto", "btrfs", "off"])
        .default("auto"),
    )
    .option("--report <file>", "write the run's JSON report there")
    .option(
      "--metrics-file <file>",
      "write Prometheus textfile metrics there (node_exporter's textfile collector)",
    )
    .option(
      "--notify-url <url>",
      "POST the JSON report there when done, success or failure (repeatable)",
      collect,
      [],
    )
    .option("--no-forget", "skip restic forget (an append-only repository, pruned by its owner)")
    .option("--recover", "only clean up after crashed runs (as the recover subcommand), then exit")
    .action(async (flags: Flags) => {
      if (flags.recover) {
        status = await recover(flags);
        return;
      }
      const { backupOnce } = await import("../backrest-sidecar/backup-once.js");
      const { formatReport } = await import("../backrest-sidecar/report.js");
      const client = await docker(flags);
      const stopTimeoutSeconds = parseSeconds(flags.stopTimeout, "--stop-timeout");
      const workloads = await (await import("../backrest-sidecar/workloads.js")).listWorkloads(
        client,
        flags.onlyLabel,
      );
      const result = await interruptibly(log, "backup", (signal) =>
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
            snapshotMode: flags.snapshot as "auto" | "btrfs" | "off",
            stateDir: stateDir(flags),
            reportFile: flags.report,
            metricsFile: flags.metricsFile,
            notifyUrls: flags.notifyUrl,
            noForget: !flags.forget,
            onReport: (report) => print(formatReport(report)),
            signal,
          },
          log,
        ),
      );
      status = result.status;
    });

  planIdPrefixFlag(
    backupFlags(
      program
        .command("restore")
        .description(
          "put a workload back from its snapshot: volumes exactly (staged beside them, then swapped in), the database dump through its own client",
        )
        .argument("<workload>", "a service, project/service, container name or plan id"),
    ),
  )
    .option("--snapshot <id>", "the snapshot (of its volumes or its dump), or latest", "latest")
    .option("--dry-run", "list what would be replaced, change nothing")
    .action(async (name: string, flags: Flags & { snapshot: string; dryRun?: boolean }) => {
      const { restoreWorkload } = await import("../backrest-sidecar/restore.js");
      const { client, env, workloads } = await resticWorld(flags);
      const steps = await interruptibly(log, "restore", (signal) =>
        restoreWorkload(
          client,
          workloads,
          {
            workload: name,
            snapshot: flags.snapshot,
            dryRun: Boolean(flags.dryRun),
            includeProject: Boolean(flags.includeProjectName),
            excludeBindMounts: Boolean(flags.excludeBindMounts),
            volumesRoot: flags.volumesRoot,
            volumePrefix: volumePrefix(flags),
            planIdPrefix: planIdPrefix(flags),
            stopTimeoutSeconds: parseSeconds(flags.stopTimeout, "--stop-timeout"),
            stateDir: stateDir(flags),
            restic: { env, signal },
          },
          log,
        ),
      );
      for (const step of steps) {
        const verb =
          step.status === "planned" ? "would replace" : step.status === "done" ? "replaced" : "FAILED";
        print(
          `${verb} ${step.what} ${step.target} from ${step.snapshot}:${step.from}${step.error ? `: ${step.error}` : ""}`,
        );
      }
      const failed = steps.filter((s) => s.status === "failed");
      if (failed.length > 0) {
        for (const step of failed) error(`not restored: ${step.what} ${step.target}: ${step.error}`);
        status = failed.length === steps.length ? 1 : 3;
      }
    });

  planIdPrefixFlag(
    engineFlags(
      program
        .command("verify")
        .description(
          "restore drill: each workload's latest snapshot into a temp dir, its dump into a throwaway container",
        )
        .argument("[workload...]", "services, project/service, container names or plan ids (default: all)"),
    ),
  )
    .option("--rcb-env-file <file>", "RESTIC_* settings (docker --env-file syntax)")
    .option("--volumes-root <dir>", "the volumes' folder in the snapshots (rcb's layout)", "/volumes")
    .option(
      "--scratch-dir <dir>",
      "where the drill restores to (a temp dir in it, removed after)",
      os.tmpdir(),
    )
    .action(async (names: string[], flags: Flags & { scratchDir: string }) => {
      const { verifyWorkloads, formatVerify } = await import("../backrest-sidecar/verify.js");
      const { client, env, workloads } = await resticWorld(flags);
      const results = await interruptibly(log, "verify", (signal) =>
        verifyWorkloads(
          client,
          workloads,
          {
            names,
            includeProject: Boolean(flags.includeProjectName),
            excludeBindMounts: Boolean(flags.excludeBindMounts),
            volumesRoot: flags.volumesRoot,
            planIdPrefix: planIdPrefix(flags),
            scratchDir: flags.scratchDir,
            restic: { env, signal },
          },
          log,
        ),
      );
      print(formatVerify(results));
      const failed = results.filter((r) => r.status === "failed").length;
      status = failed === 0 ? 0 : failed === results.length ? 1 : 3;
    });

  engineFlags(program.command("recover"))
    .description(
      "after a crash: remove backup-once's btrfs snapshots, finish interrupted restores, start containers left stopped",
    )
    .option(
      "--state-dir <dir>",
      "journals and locks [env BACKREST_SIDECAR_STATE_DIR, default /var/lib/backrest-sidecar]",
    )
    .action(async (flags: Flags) => {
      status = await recover(flags);
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
