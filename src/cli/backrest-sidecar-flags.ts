import path from "node:path";
import { type Command, Option } from "commander";
import type Docker from "dockerode";
import type { ConfigStore } from "../backrest-sidecar/backrest/store.js";
import type { ReconcileOptions } from "../backrest-sidecar/plans/reconcile.js";
import type { SettingsDefaults } from "../backrest-sidecar/workloads/settings.js";
import type { SnapshotMode } from "../backrest-sidecar/workloads/volumes.js";
import { ConfigError, UsageError } from "../system/errors.js";
import type { Logger } from "../system/log.js";

/** Every flag of every subcommand (commander gives each subcommand only its own). */
export interface Flags {
  config?: string;
  backrestUrl?: string;
  backrestUser?: string;
  backrestPasswordFile?: string;
  repoDefaults?: string;
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
  socket?: string;
  targets?: string;
}

export const DEFAULT_SCHEDULE = "0 2 * * *";
const DEFAULT_CONFIG = "/etc/backrest/config.json";

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Every subcommand: which engine, which containers, how their mounts are seen from here. */
export function engineFlags(command: Command): Command {
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

/** Where Backrest's config is: its file, or a running Backrest's API; and per-repository defaults. */
export function backrestFlags(command: Command): Command {
  return command
    .option("--config <file>", `Backrest's config.json [env BACKREST_CONFIG, default ${DEFAULT_CONFIG}]`)
    .option(
      "--backrest-url <url>",
      "a running Backrest's API instead of its file, e.g. http://backrest:9898 [env BACKREST_URL]",
    )
    .option("--backrest-user <name>", "a Backrest user, when its auth is on [env BACKREST_USER]")
    .option("--backrest-password-file <file>", "that user's password, in a file [env BACKREST_PASSWORD_FILE]")
    .option("--default-repo <id>", "repository for plans without backrest.repo (default: the config's first)")
    .option(
      "--repo-defaults <file>",
      "per repository id: default schedule, keep, hooks, notify, healthchecks (YAML or JSON)",
    )
    .option(
      "--plan-id-prefix <prefix>",
      "prefix of every plan id the sidecar owns [env BACKREST_PLAN_ID_PREFIX, default backrest_sidecar_]",
    );
}

/** The sidecar's endpoint for Backrest's hooks, and where snapshot plans' volumes are read. */
export function socketFlag(command: Command): Command {
  return command.option(
    "--socket <path>",
    "the sidecar's endpoint for Backrest's hooks, a Unix socket Backrest's container shares: with it, snapshot plans (btrfs) and dump plans (databases) [env BACKREST_SIDECAR_SOCKET]",
  );
}

/** reconcile, daemon and status: the config and how plans are made. */
export function planFlags(command: Command): Command {
  return socketFlag(backrestFlags(engineFlags(command)))
    .option(
      "--targets <file>",
      "many hosts: per host its engine (unix, tcp+TLS, ssh) and its Backrest (YAML or JSON); see README 'Many hosts'",
    )
    .option("--default-schedule <cron>", "schedule for plans without backrest.schedule", DEFAULT_SCHEDULE)
    .option(
      "--volumes-root <dir>",
      "where Backrest's restic reads snapshot plans' volumes (the sidecar mounts them there; shared with Backrest)",
      "/volumes",
    )
    .addOption(
      new Option(
        "--snapshot <mode>",
        "with --socket: auto (snapshot plans where all mounts are on btrfs), btrfs (required), off",
      )
        .choices(["auto", "btrfs", "off"])
        .default("auto"),
    );
}

/** `--socket`, else BACKREST_SIDECAR_SOCKET: an absolute path. */
export function socketPath(flags: Flags): string | undefined {
  const socket = flags.socket ?? process.env.BACKREST_SIDECAR_SOCKET;
  if (socket !== undefined && !path.posix.isAbsolute(socket))
    throw new ConfigError(
      `--socket ${socket}: expected an absolute path (Backrest's hooks use it as written)`,
    );
  return socket || undefined;
}

export function reconcileFlags(command: Command): Command {
  return planFlags(command)
    .option("--apply", "file mode: restart --backrest-container when the config changed")
    .option("--backrest-container <name>", "file mode: the Backrest container to restart", "backrest")
    .option("--reload-cmd <command>", "file mode: run this (sh -c) instead of restarting Backrest")
    .option("--keep-orphans", "keep our plans whose containers are gone")
    .option("--dry-run", "write nothing; log each rendered plan (exit 2)")
    .option("--metrics-listen <host:port>", "serve Prometheus counters at /metrics");
}

/** backup-once and restore: the engine's flags, restic's settings, how containers are stopped. */
export function backupFlags(command: Command): Command {
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
export function planIdPrefixFlag(command: Command): Command {
  return command.option(
    "--plan-id-prefix <prefix>",
    "prefix of plan ids, to find a workload by its plan id [env BACKREST_PLAN_ID_PREFIX, default backrest_sidecar_]",
  );
}

export function stateDir(flags: Flags): string {
  return flags.stateDir ?? process.env.BACKREST_SIDECAR_STATE_DIR ?? "/var/lib/backrest-sidecar";
}

/** The same defaults for every subcommand: flags beat environment variables, which beat defaults. */
export function volumePrefix(flags: Flags): string {
  return (
    flags.volumePrefix ?? process.env.BACKREST_VOLUME_PREFIX ?? path.posix.join(flags.dockerRoot, "volumes")
  );
}

/** A default that is wrong is wrong for every container: one error naming the flag, before anything. */
export function checked<T>(flag: string, value: string, check: (value: string) => T): string {
  try {
    check(value);
  } catch (error) {
    throw new ConfigError(`${flag} ${value}: ${(error as Error).message}`);
  }
  return value;
}

/** Plans with this prefix are ours (replaced, removed as orphans): it may not be empty. */
export function planIdPrefix(flags: Flags): string {
  const prefix = flags.planIdPrefix ?? process.env.BACKREST_PLAN_ID_PREFIX ?? "backrest_sidecar_";
  if (!/^[A-Za-z0-9_.-]+$/.test(prefix))
    throw new ConfigError(
      `--plan-id-prefix '${prefix}': expected letters, digits, '_', '.' or '-' (and not empty: it marks the plans the sidecar owns)`,
    );
  return prefix;
}

/** "60s", "5m", "1h" or plain seconds. */
export function parseInterval(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!match) throw new ConfigError(`--interval ${value}: expected e.g. 60s, 5m, 1h`);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? "s"] as number;
  const ms = Number(match[1]) * factor;
  if (ms < 1000) throw new ConfigError(`--interval ${value}: at least 1s`);
  return ms;
}

/** The Backrest a command talks to: its API (a URL), its file, or none was named. */
export type BackrestTarget = { url: string } | { file: string } | undefined;

/**
 * `--backrest-url` or `--config`: a flag beats the environment (BACKREST_URL, BACKREST_CONFIG);
 * both flags, or both variables, are refused rather than guessed between.
 */
export function backrestTarget(flags: Flags): BackrestTarget {
  if (flags.backrestUrl !== undefined && flags.config !== undefined)
    throw new UsageError(
      "--backrest-url and --config: give one (the API of a running Backrest, or its file)",
    );
  if (flags.backrestUrl !== undefined) return { url: flags.backrestUrl };
  if (flags.config !== undefined) return { file: flags.config };
  const { BACKREST_URL: url, BACKREST_CONFIG: file } = process.env;
  if (url && file)
    throw new ConfigError(
      "BACKREST_URL and BACKREST_CONFIG are both set: unset one, or give --backrest-url or --config",
    );
  if (url) return { url };
  if (file) return { file };
  return undefined;
}

/** The user and password file for Backrest's API, both or neither. */
function credentials(flags: Flags) {
  const user = flags.backrestUser ?? process.env.BACKREST_USER;
  const passwordFile = flags.backrestPasswordFile ?? process.env.BACKREST_PASSWORD_FILE;
  if ((user === undefined) !== (passwordFile === undefined))
    throw new ConfigError(
      user === undefined
        ? "a Backrest password file without a user: give --backrest-user (or BACKREST_USER)"
        : "a Backrest user without a password: give --backrest-password-file (or BACKREST_PASSWORD_FILE)",
    );
  return user !== undefined && passwordFile !== undefined ? { user, passwordFile } : undefined;
}

/** The config store of a Backrest target; file mode applies writes by `--apply`/`--reload-cmd`. */
export async function configStore(
  target: NonNullable<BackrestTarget>,
  flags: Flags,
  docker: Docker,
  log: Logger,
): Promise<ConfigStore> {
  const creds = credentials(flags);
  if ("url" in target) {
    if (flags.apply || flags.reloadCmd)
      throw new UsageError(
        `${flags.apply ? "--apply" : "--reload-cmd"} applies a written file; with --backrest-url, Backrest applies every change itself and nothing restarts`,
      );
    const { BackrestApi } = await import("../backrest-sidecar/backrest/api.js");
    const { ApiConfigStore } = await import("../backrest-sidecar/backrest/api-store.js");
    return new ApiConfigStore(new BackrestApi(target.url, creds));
  }
  if (flags.backrestUser !== undefined || flags.backrestPasswordFile !== undefined)
    throw new UsageError("--backrest-user and --backrest-password-file go with --backrest-url");
  const { FileConfigStore } = await import("../backrest-sidecar/backrest/file-store.js");
  const { applyAfterWrite } = await import("../backrest-sidecar/backrest/apply.js");
  const apply = flags.apply
    ? applyAfterWrite(docker, { container: flags.backrestContainer, reloadCmd: flags.reloadCmd }, log)
    : undefined;
  return new FileConfigStore(target.file, apply);
}

export function defaultRetention(flags: Flags): string {
  return flags.defaultRetention ?? process.env.BACKREST_DEFAULT_RETENTION ?? "daily=7,weekly=4";
}

/** The defaults of every workload's settings, checked once: a wrong one is one error before anything. */
export async function settingsDefaults(flags: Flags, repos: readonly string[]): Promise<SettingsDefaults> {
  const { parseKeep } = await import("../backrest-sidecar/workloads/keep.js");
  const { backrestCron } = await import("../backrest-sidecar/backrest/cron.js");
  let repoDefaults: SettingsDefaults["repoDefaults"];
  if (flags.repoDefaults) {
    const { loadRepoDefaults } = await import("../backrest-sidecar/workloads/repo-defaults.js");
    repoDefaults = await loadRepoDefaults(flags.repoDefaults);
    for (const [repo, defaults] of repoDefaults.repos)
      if (defaults.schedule !== undefined)
        checked(
          `--repo-defaults ${flags.repoDefaults} (repository ${repo}) schedule`,
          defaults.schedule,
          backrestCron,
        );
  }
  return {
    defaultRepo: flags.defaultRepo,
    repos,
    repoDefaults,
    defaultSchedule: checked("--default-schedule", flags.defaultSchedule ?? DEFAULT_SCHEDULE, backrestCron),
    defaultRetention: checked("--default-retention", defaultRetention(flags), parseKeep),
  };
}

/** How plans are made, from the flags with a fleet host's own settings over them. */
export async function planOptionsOf(flags: Flags): Promise<ReconcileOptions["plan"]> {
  const defaults = await settingsDefaults(flags, []);
  if (!path.posix.isAbsolute(flags.volumesRoot))
    throw new ConfigError(`--volumes-root ${flags.volumesRoot}: expected an absolute path`);
  return {
    prefix: planIdPrefix(flags),
    includeProject: Boolean(flags.includeProjectName),
    excludeBindMounts: Boolean(flags.excludeBindMounts),
    volumePrefix: volumePrefix(flags),
    defaultRepo: defaults.defaultRepo,
    defaultSchedule: defaults.defaultSchedule,
    defaultRetention: defaults.defaultRetention,
    repoDefaults: defaults.repoDefaults,
    socket: socketPath(flags),
    volumesRoot: flags.volumesRoot,
  };
}

export function commonOptions(flags: Flags) {
  return {
    snapshot: flags.snapshot as SnapshotMode,
    dryRun: Boolean(flags.dryRun),
    keepOrphans: Boolean(flags.keepOrphans),
    onlyLabels: flags.onlyLabel,
  };
}

/** reconcile's, daemon's and status's options for one host: the store, and how plans are made. */
export async function reconcileOptions(flags: Flags, docker: Docker, log: Logger): Promise<ReconcileOptions> {
  const plan = await planOptionsOf(flags);
  const store = await configStore(backrestTarget(flags) ?? { file: DEFAULT_CONFIG }, flags, docker, log);
  return { store, plan, ...commonOptions(flags) };
}
