import { readFile } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import { type StoppedContainer, withContainersStopped } from "../system/docker.js";
import { ConfigError } from "../system/errors.js";
import { ExecError, run } from "../system/exec.js";
import type { Logger } from "../system/log.js";
import { shellQuote } from "../system/shell-quote.js";
import { forgetFlags, parseKeep } from "./keep.js";
import { isTrue, LABEL } from "./labels.js";
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
}

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

/** Every workload's keep spec checked up front: a bad one stops the run before anything is stopped. */
export function keepPlans(workloads: readonly Workload[], options: BackupOnceOptions): Map<string, string[]> {
  const byPrefix = new Map<string, string[]>();
  for (const workload of workloads) {
    const spec = workload.labels[LABEL.keep];
    if (spec === undefined) continue;
    let flags: string[];
    try {
      flags = forgetFlags(parseKeep(spec));
    } catch (error) {
      throw new ConfigError(
        `label ${LABEL.keep}=${spec} on container ${workload.name}: ${(error as Error).message}`,
      );
    }
    byPrefix.set(workloadPrefix(workload, options.volumesRoot, options.includeProject), flags);
  }
  return byPrefix;
}

/**
 * The native engine: in a private mount namespace, a tmpfs at /volumes with each selected mount
 * bound read-only at `/volumes/[<project>/]<service>/<destination>`, then one `restic backup` per
 * workload (so `forget --group-by paths --path <prefix>` keeps each workload's own history).
 */
export async function nativeBackup(
  workloads: readonly Workload[],
  options: BackupOnceOptions,
  env: NodeJS.ProcessEnv,
  log: Logger,
): Promise<void> {
  const lines = [
    "set -u",
    `mount -t tmpfs -o mode=0755 stowage-volumes ${shellQuote(options.volumesRoot)}`,
    "failed=0",
  ];
  let count = 0;
  for (const workload of workloads.filter((w) => isTrue(w.labels[LABEL.volumes]))) {
    const prefix = workloadPrefix(workload, options.volumesRoot, options.includeProject);
    const mounts = selectMounts(workload, options.excludeBindMounts);
    if (mounts.length === 0) continue;
    for (const mount of mounts) {
      const source = mount.source;
      const target = path.posix.join(prefix, mount.destination);
      const [s, t] = [shellQuote(source), shellQuote(target)];
      lines.push(
        `if [ -d ${s} ]; then mkdir -p ${t}; else mkdir -p "$(dirname ${t})" && touch ${t}; fi`,
        `mount --bind ${s} ${t} && mount -o remount,bind,ro ${t} || failed=1`,
      );
    }
    lines.push(
      `restic backup --tag ${shellQuote(`container:${workload.name}`)} ${shellQuote(prefix)} || failed=1`,
    );
    count++;
    log.info({ action: "backup.workload", container: workload.name, path: prefix }, "backing up");
  }
  if (count === 0) {
    log.warn({ action: "backup.none" }, `no container has ${LABEL.volumes}=true; nothing to back up`);
    return;
  }
  lines.push('exit "$failed"');
  await run("mkdir", ["-p", options.volumesRoot]);
  await run("unshare", ["--mount", "--propagation", "private", "bash", "-c", lines.join("\n")], { env });
}

/** rcb's one-shot container, exactly as the seed runs it. */
export async function rcbBackup(image: string, options: BackupOnceOptions, log: Logger): Promise<void> {
  const args = ["run", "--rm", "-v", "/var/run/docker.sock:/tmp/docker.sock:ro"];
  if (options.rcbEnvFile) args.push("--env-file", options.rcbEnvFile);
  if (options.rcbNetwork) args.push("--network", options.rcbNetwork);
  if (options.excludeBindMounts) args.push("-e", "EXCLUDE_BIND_MOUNTS=1");
  if (options.includeProject) args.push("-e", "INCLUDE_PROJECT_NAME=1");
  log.info({ action: "backup.rcb", image }, "running restic-compose-backup");
  await run("docker", [...args, image, "rcb", "backup"]);
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

/**
 * backup-once: check every keep spec and the restic settings, stop the quiesced containers, back
 * up (rcb's container or the native engine), ALWAYS start them again (after success, a restic
 * failure, our own error, or SIGINT/SIGTERM/SIGHUP), then forget per workload with --prune.
 */
export async function backupOnce(
  docker: Docker,
  workloads: readonly Workload[],
  options: BackupOnceOptions,
  log: Logger,
): Promise<number> {
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
  let status = 0;
  const stopOptions = {
    timeoutSeconds: options.stopTimeoutSeconds,
    program: "backrest-sidecar",
    onStopping: (c: StoppedContainer) =>
      log.info({ action: "quiesce.stop", container: c.name }, "stopping for the backup"),
    onStarted: (c: StoppedContainer) =>
      log.info({ action: "quiesce.start", container: c.name }, "started again"),
    onStartFailed: (c: StoppedContainer, error: Error) =>
      log.error(
        { action: "quiesce.start-failed", container: c.name, err: error.message },
        "could not start again",
      ),
    onSignal: (signal: NodeJS.Signals) =>
      log.warn({ action: "backup.signal", signal }, "stopping: starting quiesced containers again"),
  };
  await withContainersStopped(docker, quiesced(workloads, options.quiesceLabel), stopOptions, async () => {
    try {
      if (options.rcbImage) await rcbBackup(options.rcbImage, options, log);
      else await nativeBackup(workloads, options, env, log);
    } catch (error) {
      if (!(error instanceof ExecError)) throw error;
      log.error({ action: "backup.failed", err: error.message }, "backup failed");
      status = 1;
    }
  });
  for (const [prefix, flags] of forgets) {
    try {
      await run("restic", ["forget", "--group-by", "paths", "--path", prefix, ...flags, "--prune"], { env });
      log.info({ action: "forget", path: prefix, flags }, "forgot per keep spec");
    } catch (error) {
      log.error({ action: "forget.failed", path: prefix, err: (error as Error).message }, "forget failed");
      status = 1;
    }
  }
  return status;
}
