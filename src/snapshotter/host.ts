import type Docker from "dockerode";
import { type ContainerInfo, withContainersStopped } from "../system/docker.js";
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

/**
 * Run `work` with the container stopped (when it runs and `stop` is set), and always start it again:
 * after success, after an error, and after SIGINT/SIGTERM/SIGHUP (the signal stops `work` at a safe
 * point first). The archive is never left half-written: appends and rewrites become visible only
 * when complete. A container that cannot be started again is an error naming it.
 */
export async function withContainerStopped<T>(
  docker: Docker,
  container: ContainerInfo,
  options: { stop: boolean; timeoutSeconds: number; log: (line: string) => void; signal: AbortSignal },
  work: () => Promise<T>,
): Promise<T> {
  if (!options.stop || !container.running) return work();
  const stopOptions = {
    timeoutSeconds: options.timeoutSeconds,
    signal: options.signal,
    onStopping: () => options.log(`stopping container ${container.name}`),
    onStarted: () => options.log(`started container ${container.name} again`),
  };
  return withContainersStopped(docker, [container], stopOptions, work);
}
