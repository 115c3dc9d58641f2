import { mkdir, readFile, rmdir, stat } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import {
  ContainersLeftStoppedError,
  type StoppedContainer,
  withContainersStopped,
} from "../system/docker.js";
import { ConfigError, isErrno } from "../system/errors.js";
import { ExecError, run } from "../system/exec.js";
import type { Logger } from "../system/log.js";
import { shellQuote } from "../system/shell-quote.js";
import { forgetFlags, parseKeep } from "./keep.js";
import { isTrue, LABEL } from "./labels.js";
import { mountHostPath } from "./plans.js";
import { selectMounts, type Workload } from "./workloads.js";

export interface BackupOnceOptions {
  quiesceLabel: string;
  stopTimeoutSeconds: number;
  excludeBindMounts: boolean;
  includeProject: boolean;
  rcbImage: string | undefined;
  rcbEnvFile: string | undefined;
  /** `docker run --network` for the rcb container (default: Docker's default network). */
  rcbNetwork: string | undefined;
  /** Where the native engine mounts the volumes (rcb's layout): /volumes. */
  volumesRoot: string;
  /** Where named volumes are on this host (`<prefix>/<name>/_data`), as for plans. */
  volumePrefix: string;
  /** The keep spec of a workload without backrest.keep, as its Backrest plan gets it. */
  defaultRetention: string;
  /** SIGINT/SIGTERM/SIGHUP: restic is killed and awaited, containers started, the rest skipped. */
  signal: AbortSignal;
}

/** restic 0.14 removes its repository lock on SIGINT only; SIGTERM would leave a stale lock. */
const RESTIC_STOP = "SIGINT";

/** KEY=VALUE lines (docker --env-file syntax: # comments, no quoting). */
export async function readEnvFile(file: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  const text = await readFile(file, "utf8").catch((error: Error) => {
    throw new ConfigError(`cannot read env file ${file}: ${error.message}`);
  });
  for (const line of text.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const equals = trimmed.indexOf("=");
    if (equals <= 0) throw new ConfigError(`${file}: '${trimmed.slice(0, 40)}' is not KEY=VALUE`);
    env[trimmed.slice(0, equals)] = trimmed.slice(equals + 1);
  }
  return env;
}

/** `/volumes[/<project>]/<service>`: rcb's folder for a container (service, else container name). */
export function workloadPrefix(workload: Workload, volumesRoot: string, includeProject: boolean): string {
  const service = workload.labels[LABEL.service] ?? workload.name;
  const project = workload.labels[LABEL.project];
  return path.posix.join(volumesRoot, ...(includeProject && project ? [project] : []), service);
}

/** The workloads this run backs up: rcb's volumes label, and something to back up. */
export function backedUp(workloads: readonly Workload[], options: BackupOnceOptions): Workload[] {
  return workloads.filter(
    (w) => isTrue(w.labels[LABEL.volumes]) && selectMounts(w, options.excludeBindMounts).length > 0,
  );
}

/**
 * The `restic forget` flags per workload folder: its backrest.keep, else --default-retention for a
 * workload this run backs up (the same default its Backrest plan gets). Every spec is checked up
 * front: a bad one stops the run before anything is stopped.
 */
export function keepPlans(workloads: readonly Workload[], options: BackupOnceOptions): Map<string, string[]> {
  const byPrefix = new Map<string, string[]>();
  const saved = new Set(backedUp(workloads, options));
  for (const workload of workloads) {
    const spec =
      workload.labels[LABEL.keep]?.trim() || (saved.has(workload) ? options.defaultRetention : undefined);
    if (spec === undefined) continue;
    let flags: string[];
    try {
      flags = forgetFlags(parseKeep(spec));
    } catch (error) {
      const where = workload.labels[LABEL.keep]?.trim()
        ? `label ${LABEL.keep}=${spec} on container ${workload.name}`
        : `--default-retention ${spec} (for container ${workload.name})`;
      throw new ConfigError(`${where}: ${(error as Error).message}`);
    }
    byPrefix.set(workloadPrefix(workload, options.volumesRoot, options.includeProject), flags);
  }
  return byPrefix;
}

/** One workload's outcome, for the summary and the exit status. */
export interface WorkloadResult {
  workload: string;
  ok: boolean;
  error?: string;
}

/**
 * One workload with the native engine: in a private mount namespace (nothing shows on the host), a
 * tmpfs at /volumes with each selected mount bound read-only at `/volumes/[<project>/]<service>/
 * <destination>`, then `restic backup` of that folder, so `forget --group-by paths --path <folder>`
 * keeps each workload's own history. Any mount that fails fails the workload before restic runs.
 */
async function backUpWorkload(
  workload: Workload,
  options: BackupOnceOptions,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const prefix = workloadPrefix(workload, options.volumesRoot, options.includeProject);
  const lines = ["set -eu", `mount -t tmpfs -o mode=0755 stowage-volumes ${shellQuote(options.volumesRoot)}`];
  for (const mount of selectMounts(workload, options.excludeBindMounts)) {
    const source = mountHostPath(mount, options.volumePrefix) ?? mount.source;
    const [s, t] = [shellQuote(source), shellQuote(path.posix.join(prefix, mount.destination))];
    lines.push(
      `[ -e ${s} ] || { echo "mount source ${source.replaceAll('"', "")} does not exist" >&2; exit 1; }`,
      `if [ -d ${s} ]; then mkdir -p ${t}; else mkdir -p "$(dirname ${t})" && touch ${t}; fi`,
      `mount --bind ${s} ${t}`,
      `mount -o remount,bind,ro ${t}`,
    );
  }
  lines.push(`exec restic backup --tag ${shellQuote(`container:${workload.name}`)} ${shellQuote(prefix)}`);
  // exec: the process we signal on an abort is restic itself.
  await run("unshare", ["--mount", "--propagation", "private", "bash", "-c", lines.join("\n")], {
    env,
    signal: options.signal,
    stopSignal: RESTIC_STOP,
  });
}

/** The mount point the native engine needs; made (and removed afterwards) only if missing. */
async function withVolumesRoot<T>(root: string, work: () => Promise<T>): Promise<T> {
  const made = await stat(root).then(
    () => false,
    async (error: unknown) => {
      if (!isErrno(error, "ENOENT")) throw error;
      await mkdir(root, { recursive: true, mode: 0o755 });
      return true;
    },
  );
  try {
    return await work();
  } finally {
    if (made) await rmdir(root).catch(() => {});
  }
}

export async function nativeBackup(
  workloads: readonly Workload[],
  options: BackupOnceOptions,
  env: NodeJS.ProcessEnv,
  log: Logger,
): Promise<WorkloadResult[]> {
  const selected = backedUp(workloads, options);
  if (selected.length === 0) {
    log.warn({ action: "backup.none" }, `no container has ${LABEL.volumes}=true; nothing to back up`);
    return [];
  }
  return withVolumesRoot(options.volumesRoot, async () => {
    const results: WorkloadResult[] = [];
    for (const workload of selected) {
      const prefix = workloadPrefix(workload, options.volumesRoot, options.includeProject);
      log.info({ action: "backup.workload", container: workload.name, path: prefix }, "backing up");
      try {
        await backUpWorkload(workload, options, env);
        results.push({ workload: workload.name, ok: true });
      } catch (error) {
        if (!(error instanceof ExecError)) throw error;
        log.error({ action: "backup.failed", container: workload.name, err: error.message }, "backup failed");
        results.push({ workload: workload.name, ok: false, error: error.message });
      }
    }
    return results;
  });
}

/** rcb's one-shot container, exactly as the seed runs it: one result for all its workloads. */
export async function rcbBackup(
  image: string,
  options: BackupOnceOptions,
  log: Logger,
): Promise<WorkloadResult[]> {
  const args = ["run", "--rm", "-v", "/var/run/docker.sock:/tmp/docker.sock:ro"];
  if (options.rcbEnvFile) args.push("--env-file", options.rcbEnvFile);
  if (options.rcbNetwork) args.push("--network", options.rcbNetwork);
  if (options.excludeBindMounts) args.push("-e", "EXCLUDE_BIND_MOUNTS=1");
  if (options.includeProject) args.push("-e", "INCLUDE_PROJECT_NAME=1");
  log.info({ action: "backup.rcb", image }, "running restic-compose-backup");
  try {
    await run("docker", [...args, image, "rcb", "backup"], { signal: options.signal });
    return [{ workload: `rcb (${image})`, ok: true }];
  } catch (error) {
    if (!(error instanceof ExecError)) throw error;
    log.error({ action: "backup.failed", err: error.message }, "backup failed");
    return [{ workload: `rcb (${image})`, ok: false, error: error.message }];
  }
}

/** Containers to stop: running, with the quiesce label (key=value). */
function quiesced(workloads: readonly Workload[], label: string): Workload[] {
  const equals = label.indexOf("=");
  const key = equals < 0 ? label : label.slice(0, equals);
  const value = equals < 0 ? "true" : label.slice(equals + 1);
  return workloads.filter(
    (w) => w.running && (value === "true" ? isTrue(w.labels[key]) : w.labels[key] === value),
  );
}

/** The seed's exit codes for backup-once: 0 all done, 3 some workloads failed, 1 nothing done. */
export interface BackupOnceResult {
  status: 0 | 1 | 3;
  results: WorkloadResult[];
}

/**
 * backup-once: check every keep spec and the restic settings, stop the quiesced containers, back
 * up (rcb's container or the native engine), ALWAYS start them again (after success, a restic
 * failure, our own error, or a signal), then forget per workload with --prune. A container that
 * cannot be started again fails the run (a ContainersLeftStoppedError naming each, thrown last,
 * after the forgets); a signal kills restic, starts the containers and ends the run (128+N).
 */
export async function backupOnce(
  docker: Docker,
  workloads: readonly Workload[],
  options: BackupOnceOptions,
  log: Logger,
): Promise<BackupOnceResult> {
  const forgets = keepPlans(workloads, options);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...(options.rcbEnvFile ? await readEnvFile(options.rcbEnvFile) : {}),
  };
  if (!env.RESTIC_REPOSITORY && !env.RESTIC_REPOSITORY_FILE) {
    throw new ConfigError("no restic repository: set RESTIC_REPOSITORY (environment or --rcb-env-file)");
  }
  if (!env.RESTIC_PASSWORD && !env.RESTIC_PASSWORD_FILE && !env.RESTIC_PASSWORD_COMMAND) {
    throw new ConfigError(
      "no restic password: set RESTIC_PASSWORD or RESTIC_PASSWORD_FILE (environment or --rcb-env-file)",
    );
  }
  const stopOptions = {
    timeoutSeconds: options.stopTimeoutSeconds,
    signal: options.signal,
    onStopping: (c: StoppedContainer) =>
      log.info({ action: "quiesce.stop", container: c.name }, "stopping for the backup"),
    onStarted: (c: StoppedContainer) =>
      log.info({ action: "quiesce.start", container: c.name }, "started again"),
  };
  let leftStopped: ContainersLeftStoppedError | undefined;
  let results: WorkloadResult[] = [];
  try {
    await withContainersStopped(docker, quiesced(workloads, options.quiesceLabel), stopOptions, async () => {
      results = options.rcbImage
        ? await rcbBackup(options.rcbImage, options, log)
        : await nativeBackup(workloads, options, env, log);
    });
  } catch (error) {
    if (error instanceof ContainersLeftStoppedError)
      for (const { container, reason } of error.left)
        log.error(
          { action: "quiesce.start-failed", container: container.name, err: reason },
          "could not start again",
        );
    // Interrupted, or our own error: nothing more to do (every container we stopped was started).
    if (!(error instanceof ContainersLeftStoppedError) || error.workError !== undefined) throw error;
    // The backups are done: their forgets still run, then this error ends the run.
    leftStopped = error;
  }
  for (const [prefix, flags] of forgets) {
    if (options.signal.aborted) throw options.signal.reason;
    try {
      await run("restic", ["forget", "--group-by", "paths", "--path", prefix, ...flags, "--prune"], {
        env,
        signal: options.signal,
        stopSignal: RESTIC_STOP,
      });
      log.info({ action: "forget", path: prefix, flags }, "forgot per keep spec");
    } catch (error) {
      if (!(error instanceof ExecError)) throw error;
      log.error({ action: "forget.failed", path: prefix, err: error.message }, "forget failed");
      results.push({ workload: prefix, ok: false, error: `forget: ${error.message}` });
    }
  }
  if (leftStopped) throw leftStopped;
  const failed = results.filter((r) => !r.ok).length;
  const status = failed === 0 ? 0 : failed === results.length ? 1 : 3;
  return { status, results };
}
