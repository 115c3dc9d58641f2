import os from "node:os";
import Docker from "dockerode";
import { StowageError } from "./errors.js";

/** The Docker engine could not be reached, or refused what we asked. */
export class DockerError extends StowageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("EXEC_FAILED", message, options);
  }
}

/**
 * A Docker API client: DOCKER_HOST (unix://, tcp://) when set, else the given or default socket.
 * dockerode reads DOCKER_HOST itself when no socket is passed.
 */
export function dockerClient(socketPath?: string): Docker {
  if (socketPath) return new Docker({ socketPath });
  if (process.env.DOCKER_HOST) return new Docker();
  return new Docker({ socketPath: "/var/run/docker.sock" });
}

export interface ContainerMount {
  type: string;
  /** The path on the host (a volume's `_data` directory for named volumes). */
  source: string;
  /** The path inside the container. */
  destination: string;
  name?: string;
  readWrite: boolean;
}

export interface ContainerInfo {
  id: string;
  name: string;
  running: boolean;
  mounts: ContainerMount[];
  labels: Record<string, string>;
}

function describe(error: unknown): string {
  const err = error as { statusCode?: number; json?: { message?: string }; message?: string };
  return err.json?.message ?? err.message ?? String(error);
}

export async function inspectContainer(docker: Docker, nameOrId: string): Promise<ContainerInfo> {
  let info: Docker.ContainerInspectInfo;
  try {
    info = await docker.getContainer(nameOrId).inspect();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404)
      throw new DockerError(`no such container: ${nameOrId}`);
    throw new DockerError(`cannot inspect container ${nameOrId}: ${describe(error)}`, { cause: error });
  }
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ""),
    running: info.State.Running,
    labels: info.Config.Labels ?? {},
    mounts: (info.Mounts ?? []).map((mount) => ({
      type: mount.Type,
      source: mount.Source,
      destination: mount.Destination,
      ...(mount.Name ? { name: mount.Name } : {}),
      readWrite: mount.RW,
    })),
  };
}

export async function stopContainer(docker: Docker, id: string, timeoutSeconds: number): Promise<void> {
  try {
    await docker.getContainer(id).stop({ t: timeoutSeconds });
  } catch (error) {
    // 304: already stopped.
    if ((error as { statusCode?: number }).statusCode === 304) return;
    throw new DockerError(`cannot stop container ${id}: ${describe(error)}`, { cause: error });
  }
}

export async function startContainer(docker: Docker, id: string): Promise<void> {
  try {
    await docker.getContainer(id).start();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 304) return;
    throw new DockerError(`cannot start container ${id}: ${describe(error)}`, { cause: error });
  }
}

export interface StoppedContainer {
  id: string;
  name: string;
}

export interface StopOptions {
  /** `docker stop --time`: seconds before the engine kills it. */
  timeoutSeconds: number;
  /** The command's name, for the one line written when starting again fails after a signal. */
  program: string;
  onStopping?: (container: StoppedContainer) => void;
  onStarted?: (container: StoppedContainer) => void;
  /** Told when a container cannot be started again; without it, that error is thrown (after trying the rest). */
  onStartFailed?: (container: StoppedContainer, error: Error) => void;
  onSignal?: (signal: NodeJS.Signals) => void;
}

const STOP_SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * Run `work` with these containers stopped, and ALWAYS start them again: after success, after an
 * error, and on SIGINT/SIGTERM/SIGHUP (then exit 128+N). A container whose stop failed half-way is
 * started again too.
 */
export async function withContainersStopped<T>(
  docker: Docker,
  containers: readonly StoppedContainer[],
  options: StopOptions,
  work: () => Promise<T>,
): Promise<T> {
  const stopped: StoppedContainer[] = [];
  let restarted = false;
  const restart = async () => {
    if (restarted) return;
    restarted = true;
    let failure: Error | undefined;
    for (const container of stopped) {
      try {
        await startContainer(docker, container.id);
        options.onStarted?.(container);
      } catch (error) {
        if (options.onStartFailed) options.onStartFailed(container, error as Error);
        else failure ??= error as Error;
      }
    }
    if (failure) throw failure;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    options.onSignal?.(signal);
    restart()
      .catch((error: unknown) => process.stderr.write(`${options.program}: ${(error as Error).message}\n`))
      .finally(() => process.exit(128 + (os.constants.signals[signal] ?? 15)));
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  try {
    for (const container of containers) {
      options.onStopping?.(container);
      stopped.push(container);
      await stopContainer(docker, container.id, options.timeoutSeconds);
    }
    return await work();
  } finally {
    await restart();
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  }
}
