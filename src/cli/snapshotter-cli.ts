import v8 from "node:v8";
import type { Command } from "commander";
import { initArchive } from "../snapshotter/archive-file.js";
import { backup, type VolumeSource } from "../snapshotter/backup.js";
import { compactArchive } from "../snapshotter/compact.js";
import { checkConfig, loadConfig, type SnapshotConfig } from "../snapshotter/config.js";
import { formatListing, listArchive } from "../snapshotter/list.js";
import { progressMeter, treeBytes } from "../snapshotter/progress.js";
import { restore } from "../snapshotter/restore.js";
import { asTarFailure, ConfigError } from "../system/errors.js";
import { interruptible } from "../system/signals.js";
import { output } from "./output.js";
import { newProgram, parseSeconds } from "./program.js";

const DEFAULT_CONFIG = "/config.yml";
const DEFAULT_ARCHIVE = "/backup.tar";

interface RunFlags {
  config?: string;
  archive: string;
  container?: string;
  prefix?: string;
  stop?: boolean;
  stopTimeout: string;
  appendOnly?: boolean;
}

const { print, warn } = output("snapshotter");

/**
 * The prefix and volumes: from config.yml (default /config.yml; in host mode only with --config),
 * with --prefix beating the file's prefix. Container mode needs a volume list.
 */
async function settings(flags: RunFlags): Promise<SnapshotConfig> {
  const hostMode = flags.container !== undefined;
  const file = flags.config ?? (hostMode ? undefined : DEFAULT_CONFIG);
  const loaded = file === undefined ? undefined : await loadConfig(file, false);
  const source = file ?? "--prefix";
  const config = checkConfig(
    { ...loaded, ...(flags.prefix !== undefined ? { prefix: flags.prefix } : {}) },
    source,
  );
  if (!hostMode && !config.volumes) {
    throw new ConfigError(
      `${source}: volumes: missing (list the absolute paths to save, or use --container NAME)`,
    );
  }
  return config;
}

function runOptions(command: Command): Command {
  return command
    .option(
      "--config <file>",
      `config.yml with prefix and volumes (default ${DEFAULT_CONFIG}; host mode: none)`,
    )
    .option("--archive <file>", "the tar archive", DEFAULT_ARCHIVE)
    .option("--container <name>", "host mode: read this container's mounts through the Docker API")
    .option("--prefix <path>", "where in the archive (overrides the config's prefix)")
    .option("--stop", "host mode: stop the container meanwhile, always start it again")
    .option("--stop-timeout <seconds>", "seconds `docker stop` waits before killing", "10");
}

/** Host mode only: the Docker client (dockerode takes ~90 ms to load, so container mode skips it). */
async function hostContainer(nameOrId: string) {
  const { dockerClient, inspectContainer } = await import("../system/docker.js");
  const host = await import("../snapshotter/host.js");
  const docker = dockerClient();
  return { docker, container: await inspectContainer(docker, nameOrId), host };
}

/**
 * Exit 0: everything saved exactly. 1 (as GNU tar): saved, but some files changed or vanished
 * while they were read (each was named in a warning); the archive is valid.
 */
async function runBackup(flags: RunFlags, signal: AbortSignal): Promise<number> {
  const config = await settings(flags);
  // 1: regular files are read ahead by a worker thread (see README "snapshotter speed").
  const readerThread = (threadsFrom("STOWAGE_BACKUP_THREADS", 1) ?? 0) > 0;
  const meter = progressMeter("backup");
  const run = async (volumes: VolumeSource[]) => {
    if (meter.enabled) meter.setTotal(treeBytes(volumes.map((volume) => volume.path)));
    const outcome = await backup({
      archive: flags.archive,
      prefix: config.prefix,
      volumes,
      appendOnly: Boolean(flags.appendOnly),
      warn,
      onBytes: meter.onBytes,
      signal,
      readerThread,
    });
    meter.finish();
    for (const volume of outcome.volumes)
      print(`saved ${volume.target} (${volume.type}) as ${config.prefix}/${volume.id}`);
    const count = `${outcome.volumes.length} volume(s) under ${config.prefix}`;
    if (outcome.kind === "appended") print(`${count} appended to ${flags.archive}`);
    if (outcome.kind === "replaced") print(`${count} replaced the previous copy in ${flags.archive}`);
    if (outcome.kind === "superseded") {
      print(
        `${count} appended to ${flags.archive}; it is a mount point (a bind-mounted file) and cannot be rewritten, ` +
          `so the previous copy stays, marked superseded: restore uses the new one. ` +
          `Run 'snapshotter compact --archive FILE' where the archive is a plain file to drop it.`,
      );
    }
    if (outcome.changedFiles === 0) return 0;
    warn(
      `${outcome.changedFiles} file(s) changed or vanished while being read (named above); ` +
        "the archive is valid and holds them as they were read (exit 1, as GNU tar)",
    );
    return 1;
  };
  if (flags.container === undefined)
    return run((config.volumes ?? []).map((target) => ({ target, path: target })));
  const { docker, container, host } = await hostContainer(flags.container);
  const volumes = host.hostVolumes(container, config.volumes);
  if (volumes.length === 0) throw new ConfigError(`container ${container.name} has no mounts to save`);
  const timeoutSeconds = parseSeconds(flags.stopTimeout, "--stop-timeout");
  const stop = { stop: Boolean(flags.stop), timeoutSeconds, log: print, signal };
  return host.withContainerStopped(docker, container, stop, () => run(volumes));
}

/** A number of threads from an environment variable, from 0 to `most`; unset: undefined. */
function threadsFrom(name: string, most: number): number | undefined {
  const value = process.env[name];
  if (value === undefined || value === "") return undefined;
  if (!/^\d{1,2}$/.test(value) || Number(value) > most)
    throw new ConfigError(`${name}=${value}: expected a number of threads from 0 to ${most}`);
  return Number(value);
}

async function runRestore(flags: RunFlags, signal: AbortSignal): Promise<void> {
  const config = await settings(flags);
  // The worker threads that write a directory volume's files, for every volume (0: the main
  // thread writes them); unset: one, for volumes big enough to pay for it.
  const threads = threadsFrom("STOWAGE_RESTORE_THREADS", 64);
  const meter = progressMeter("restore");
  const restoreWith = async (resolve: (target: string) => string) => {
    const restored = await restore({
      archive: flags.archive,
      prefix: config.prefix,
      only: config.volumes,
      resolve,
      warn,
      onBytes: meter.onBytes,
      onTotal: meter.setTotal,
      signal,
      ...(threads !== undefined ? { threads } : {}),
    });
    meter.finish();
    for (const volume of restored) {
      print(
        `restored ${volume.target} (${volume.type}, ${volume.entries} entr${volume.entries === 1 ? "y" : "ies"}) into ${volume.path}`,
      );
    }
  };
  if (flags.container === undefined) {
    await restoreWith((target) => target);
    return;
  }
  const { docker, container, host } = await hostContainer(flags.container);
  const timeoutSeconds = parseSeconds(flags.stopTimeout, "--stop-timeout");
  const stop = { stop: Boolean(flags.stop), timeoutSeconds, log: print, signal };
  await host.withContainerStopped(docker, container, stop, () =>
    restoreWith((target) => host.hostPath(container, target)),
  );
}

/** snapshotter exits like GNU tar: 0 done, 1 done but some files changed while read, 2 failed. */
export async function main(argv: string[]): Promise<number> {
  // V8 grows the old generation by 10% of what lives instead of doubling it (read at each
  // collection, so it takes effect here too): peak RSS of a backup of 100,000 files 100 -> 86 MiB.
  // --optimize-for-size held it as low but released and faulted pages back in all along: 10-20%
  // slower backups (README, "snapshotter speed").
  v8.setFlagsFromString("--heap-growing-percent=10");
  try {
    return await commands(argv);
  } catch (error) {
    throw asTarFailure(error);
  }
}

async function commands(argv: string[]): Promise<number> {
  let status = 0;
  const stopping = (signal: NodeJS.Signals, first: boolean) =>
    warn(first ? `${signal}: stopping at the next safe point` : `${signal}: already stopping`);
  const program = newProgram(
    "snapshotter",
    "Save every volume of a container into an appendable tar under a prefix, and restore it.",
  );

  runOptions(
    program
      .command("backup")
      .description(
        "save the volumes under the prefix; a new prefix is appended, an existing one replaced (see --append-only)",
      ),
  )
    .option("--append-only", "keep the previous copy of the prefix too (restore uses the newest)")
    .action(async (flags: RunFlags) => {
      status = await interruptible((signal) => runBackup(flags, signal), stopping);
    });

  runOptions(
    program
      .command("restore")
      .description(
        "restore the newest copy of the prefix: the config's volumes, else every volume in the archive. " +
          "A directory volume is emptied first: files not in the backup are removed (as the original does); " +
          "a file volume is rewritten in place; a missing target is created",
      ),
  ).action((flags: RunFlags) => interruptible((signal) => runRestore(flags, signal), stopping));

  program
    .command("init")
    .description("create an empty archive (1,024 zero bytes); never overwrites")
    .argument("<file>")
    .action(async (file: string) => {
      await initArchive(file);
      print(`created empty archive ${file}`);
    });

  program
    .command("list")
    .description("prefixes, volumes, entry counts and sizes in the archive")
    .option("--archive <file>", "the tar archive", DEFAULT_ARCHIVE)
    .option("--prefix <path>", "only this prefix")
    .option("--json", "machine-readable output")
    .action(async (flags: { archive: string; prefix?: string; json?: boolean }) => {
      const listing = await listArchive(flags.archive, flags.prefix);
      print(flags.json ? JSON.stringify(listing, null, 2) : formatListing(listing));
    });

  program
    .command("compact")
    .description("drop superseded copies and interrupted backups (rewrites the archive; needs a plain file)")
    .option("--archive <file>", "the tar archive", DEFAULT_ARCHIVE)
    .action(async (flags: { archive: string }) => {
      const result = await compactArchive(flags.archive);
      print(
        `dropped ${result.droppedCopies} superseded copy(ies), ${result.droppedEntries} entries, from ${flags.archive}`,
      );
    });

  program.addHelpText(
    "after",
    "\nExit status (as GNU tar): 0 done; 1 done, but some files changed or vanished while read (named in\n" +
      "warnings; the archive is valid); 2 failed, nothing of the new copy is in the archive; 75 the archive\n" +
      "is busy (another writer); 128+N stopped by signal N at a safe point.",
  );
  await program.parseAsync(argv, { from: "user" });
  return status;
}
