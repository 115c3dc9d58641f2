import type { SidecarMetrics } from "../backrest-sidecar/plans/metrics.js";
import type { Logger } from "../system/log.js";
import type { Flags } from "./backrest-sidecar-flags.js";
import type { Output } from "./output.js";

/** What every subcommand's action gets besides its flags. */
export interface Context {
  log: Logger;
  out: Output;
  /** The subcommand's exit status. */
  exit(status: number): void;
}

export async function docker(flags: Flags) {
  const { dockerClient } = await import("../system/docker.js");
  return dockerClient(flags.dockerSock);
}

/** Work that SIGINT/SIGTERM/SIGHUP stop at a safe point (logged; the run then exits 128+N). */
export async function interruptibly<T>(
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

/** What restore and verify start from: the engine, restic's settings, the labelled containers. */
export async function resticWorld(flags: Flags) {
  const { lockWaitFlags, resticEnvironment } = await import("../backrest-sidecar/host-backup/restic.js");
  const { listWorkloads } = await import("../backrest-sidecar/workloads/discover.js");
  const client = await docker(flags);
  const env = await resticEnvironment(flags.rcbEnvFile);
  const lockFlags = await lockWaitFlags(env);
  return { client, env, lockFlags, workloads: await listWorkloads(client, flags.onlyLabel) };
}

/** The metrics server, if asked for; closed when the command is done. */
export async function withMetrics<T>(
  flags: Flags,
  work: (metrics: SidecarMetrics | undefined) => Promise<T>,
): Promise<T> {
  if (!flags.metricsListen) return work(undefined);
  const { SidecarMetrics } = await import("../backrest-sidecar/plans/metrics.js");
  const metrics = new SidecarMetrics();
  const server = await metrics.listen(flags.metricsListen);
  try {
    return await work(metrics);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}
