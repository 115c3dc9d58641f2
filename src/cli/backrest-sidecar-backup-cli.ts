import os from "node:os";
import { type Command, Option } from "commander";
import { type Context, docker, interruptibly, resticWorld } from "./backrest-sidecar-context.js";
import {
  backrestFlags,
  backrestTarget,
  backupFlags,
  collect,
  configStore,
  DEFAULT_SCHEDULE,
  engineFlags,
  type Flags,
  planIdPrefix,
  planIdPrefixFlag,
  settingsDefaults,
  socketFlag,
  socketPath,
  stateDir,
  volumePrefix,
} from "./backrest-sidecar-flags.js";
import { parseSeconds } from "./program.js";

/**
 * `recover` (and `backup-once --recover`): a running daemon finishes the snapshot plans it
 * prepared for backups that are not running (Backrest killed mid-backup); then what dead runs
 * left is cleaned up. Exit 75 while a journal waits for its filesystem.
 */
async function recover(flags: Flags, ctx: Context): Promise<number> {
  const { recoverAll } = await import("../backrest-sidecar/host-backup/recover.js");
  const socket = socketPath(flags);
  if (socket) {
    const { askDaemonToRecover } = await import("../backrest-sidecar/host-backup/endpoint-client.js");
    const finished = await askDaemonToRecover(socket);
    if (finished === undefined)
      ctx.out.print(`no sidecar answers at ${socket}; cleaning up what dead runs left`);
    else
      ctx.out.print(
        `the sidecar at ${socket} finished ${finished.length} prepared plan(s)${finished.length > 0 ? ` (${finished.join(", ")})` : ""}`,
      );
  }
  const client = await docker(flags);
  const done = await interruptibly(ctx.log, "recover", (signal) =>
    recoverAll(client, stateDir(flags), ctx.log, signal),
  );
  const started = done.started.length > 0 ? ` (${done.started.join(", ")})` : "";
  ctx.out.print(
    `removed ${done.removed} snapshot(s) of crashed runs; finished ${done.restores} interrupted restore(s); started ${done.started.length} container(s) left stopped${started}`,
  );
  for (const waiting of done.waiting)
    ctx.out.error(
      `${waiting.journal}: its filesystem ${waiting.uuid} is not attached; kept for a later recover`,
    );
  return done.waiting.length > 0 ? 75 : 0;
}

/**
 * What backup-once learns from Backrest, when one is named: its repositories (for workloads'
 * repository defaults) and its instance id (the `created-by:` tag). Backrest being away never
 * stops a backup: the snapshots are then made without `created-by:`, and a warning says so.
 */
async function backrestFacts(flags: Flags, ctx: Context) {
  const target = backrestTarget(flags);
  if (target === undefined) return { repos: [], instance: undefined };
  const { instanceId, repoIds } = await import("../backrest-sidecar/backrest/store.js");
  const store = await configStore(target, flags, await docker(flags), ctx.log);
  try {
    const config = await store.read();
    return { repos: repoIds(config), instance: instanceId(config) };
  } catch (error) {
    ctx.log.warn(
      { action: "backrest.unavailable", config: store.where, err: (error as Error).message },
      "cannot read Backrest's config; snapshots are not tagged created-by, so Backrest will not list them under the plans",
    );
    return { repos: [], instance: undefined };
  }
}

export function backupOnceCommand(program: Command, ctx: Context): void {
  backrestFlags(
    backupFlags(
      program
        .command("backup-once")
        .description(
          "dump databases, stop quiesced containers only for btrfs snapshots (or for the backup), back up, start them again, forget per backrest.keep",
        ),
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
        ctx.exit(await recover(flags, ctx));
        return;
      }
      const { backupOnce } = await import("../backrest-sidecar/host-backup/backup-once.js");
      const { formatReport } = await import("../backrest-sidecar/host-backup/report.js");
      const { listWorkloads } = await import("../backrest-sidecar/workloads/discover.js");
      const client = await docker(flags);
      const stopTimeoutSeconds = parseSeconds(flags.stopTimeout, "--stop-timeout");
      const backrest = await backrestFacts(flags, ctx);
      const settings = await settingsDefaults(
        { ...flags, defaultSchedule: DEFAULT_SCHEDULE },
        backrest.repos,
      );
      const workloads = await listWorkloads(client, flags.onlyLabel);
      const result = await interruptibly(ctx.log, "backup", (signal) =>
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
            settings,
            backrest: { planIdPrefix: planIdPrefix(flags), instance: backrest.instance },
            snapshotMode: flags.snapshot as "auto" | "btrfs" | "off",
            stateDir: stateDir(flags),
            reportFile: flags.report,
            metricsFile: flags.metricsFile,
            notifyUrls: flags.notifyUrl,
            noForget: !flags.forget,
            onReport: (report) => ctx.out.print(formatReport(report)),
            signal,
          },
          ctx.log,
        ),
      );
      ctx.exit(result.status);
    });
}

export function restoreCommand(program: Command, ctx: Context): void {
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
      const { restoreWorkload, restoreOutcome } = await import("../backrest-sidecar/host-backup/restore.js");
      const { client, env, lockFlags, workloads } = await resticWorld(flags);
      const steps = await interruptibly(ctx.log, "restore", (signal) =>
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
            restic: { env, signal, lockFlags },
          },
          ctx.log,
        ),
      );
      const outcome = restoreOutcome(steps);
      for (const line of outcome.lines) ctx.out.print(line);
      for (const line of outcome.failures) ctx.out.error(line);
      ctx.exit(outcome.status);
    });
}

export function verifyCommand(program: Command, ctx: Context): void {
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
      const { verifyWorkloads, formatVerify, verifyStatus } = await import(
        "../backrest-sidecar/host-backup/verify.js"
      );
      const { client, env, lockFlags, workloads } = await resticWorld(flags);
      const results = await interruptibly(ctx.log, "verify", (signal) =>
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
            restic: { env, signal, lockFlags },
          },
          ctx.log,
        ),
      );
      ctx.out.print(formatVerify(results));
      ctx.exit(verifyStatus(results));
    });
}

export function recoverCommand(program: Command, ctx: Context): void {
  socketFlag(engineFlags(program.command("recover")))
    .description(
      "after a crash: remove backup-once's btrfs snapshots, finish interrupted restores, start containers left stopped",
    )
    .option(
      "--state-dir <dir>",
      "journals and locks [env BACKREST_SIDECAR_STATE_DIR, default /var/lib/backrest-sidecar]",
    )
    .action(async (flags: Flags) => {
      ctx.exit(await recover(flags, ctx));
    });
}
