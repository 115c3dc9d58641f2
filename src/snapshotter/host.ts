import type Docker from "dockerode";
import { type ContainerInfo, startContainer, stopContainer } from "../system/docker.js";
import { ConfigError } from "../system/errors.js";
import type { VolumeSource } from "./backup.js";

/**
 * Host mode: the container's mounts, read through the Docker API, stand in for `--volumes-from`.
 * Without a volume list every mount is taken; a listed path must be one of its mount destinations.
 */
export function hostVolumes(container: ContainerInfo, wanted: readonly string[] | undefined): VolumeSource[] {
  const mounts = [...container.mounts].sort((a, b) => (a.destination < b.destination ? -1 : 1));
  if (!wanted) return mounts.map((mount) => ({ target: mount.destination, path: mount.source }));
  return wanted.map((target) => ({ target, path: hostPath(container, target) }));
}

/** Where a container path (a mount destination) lives on the host. */
export function hostPath(container: ContainerInfo, target: string): string {
  const mount = container.mounts.find((m) => m.destination === target);
  if (!mount) {
    const known = container.mounts.map((m) => m.destination).join(", ") || "none";
    throw new ConfigError(`${target} is not a mount of container ${container.name} (its mounts: ${known})`);
  }
  return mount.source;
}

const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
const NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/**
 * Run `work` with the container stopped (when it runs and `stop` is set), and always start it again:
 * after success, after an error, and on SIGINT/SIGTERM/SIGHUP (then exit 128+N). The archive is
 * never left half-written by a signal: appends and rewrites only become visible when complete.
 */
export async function withContainerStopped<T>(
  docker: Docker,
  container: ContainerInfo,
  options: { stop: boolean; timeoutSeconds: number; log: (line: string) => void },
  work: () => Promise<T>,
): Promise<T> {
  if (!options.stop || !container.running) return work();
  let restarted = false;
  const restart = async () => {
    if (restarted) return;
    restarted = true;
    await startContainer(docker, container.id);
    options.log(`started container ${container.name} again`);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    restart()
      .catch((error: unknown) => process.stderr.write(`snapshotter: ${(error as Error).message}\n`))
      .finally(() => process.exit(128 + (NUMBERS[signal] ?? 15)));
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  try {
    options.log(`stopping container ${container.name}`);
    await stopContainer(docker, container.id, options.timeoutSeconds);
    return await work();
  } finally {
    await restart();
    for (const signal of SIGNALS) process.off(signal, onSignal);
  }
}
