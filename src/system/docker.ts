import Docker from "dockerode";
import { InterruptedError, StowageError } from "./errors.js";

/** The Docker engine could not be reached, or refused what we asked. */
export class DockerError extends StowageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("EXEC_FAILED", message, options);
  }
}

/** The engine has no container by that name or id (404). */
export class NoSuchContainerError extends DockerError {
  constructor(nameOrId: string) {
    super(`no such container: ${nameOrId}`);
  }
}

const DEFAULT_SOCKET = "/var/run/docker.sock";

/**
 * A Docker API client: the given socket, else DOCKER_HOST (unix://, tcp://) when set, else the
 * default socket. dockerode reads DOCKER_HOST itself when no socket is passed.
 */
export function dockerClient(socketPath?: string): Docker {
  if (socketPath) return new Docker({ socketPath });
  if (process.env.DOCKER_HOST) return new Docker();
  return new Docker({ socketPath: DEFAULT_SOCKET });
}

/** Where this client talks to the engine, for messages. */
export function engineAddress(docker: Docker): string {
  const modem = (
    docker as unknown as { modem?: { socketPath?: string; host?: string; port?: number; protocol?: string } }
  ).modem;
  if (modem?.socketPath) return modem.socketPath;
  if (modem?.host) return `${modem.protocol ?? "http"}://${modem.host}${modem.port ? `:${modem.port}` : ""}`;
  return process.env.DOCKER_HOST ?? DEFAULT_SOCKET;
}

/** The engine did not answer at all (no socket, refused, no permission), as opposed to a refusal. */
function unreachable(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return ["ENOENT", "ECONNREFUSED", "EACCES", "EPERM", "ECONNRESET", "EHOSTUNREACH", "ETIMEDOUT"].includes(
    code ?? "",
  );
}

/** An engine call whose failure becomes a DockerError naming the engine and what was asked. */
export async function engineCall<T>(docker: Docker, what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof StowageError) throw error;
    if (unreachable(error))
      throw new DockerError(
        `cannot reach the Docker engine at ${engineAddress(docker)} to ${what}: ${describe(error)}`,
        {
          cause: error,
        },
      );
    throw new DockerError(`cannot ${what}: ${describe(error)}`, { cause: error });
  }
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
  const info = await engineCall(docker, `inspect container ${nameOrId}`, async () => {
    try {
      return await docker.getContainer(nameOrId).inspect();
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) throw new NoSuchContainerError(nameOrId);
      throw error;
    }
  });
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

/** 304 from the engine: the container already was in the state asked for. */
const alreadyThere = (error: unknown) => (error as { statusCode?: number }).statusCode === 304;

export async function stopContainer(docker: Docker, id: string, timeoutSeconds: number): Promise<void> {
  await engineCall(docker, `stop container ${id}`, () =>
    docker
      .getContainer(id)
      .stop({ t: timeoutSeconds })
      .catch((error: unknown) => {
        if (!alreadyThere(error)) throw error;
      }),
  );
}

export async function startContainer(docker: Docker, id: string): Promise<void> {
  await engineCall(docker, `start container ${id}`, () =>
    docker
      .getContainer(id)
      .start()
      .catch((error: unknown) => {
        if (!alreadyThere(error)) throw error;
      }),
  );
}

export interface StoppedContainer {
  id: string;
  name: string;
}

export interface StopOptions {
  /** `docker stop --time`: seconds before the engine kills it. */
  timeoutSeconds: number;
  /** Aborted by a signal: no further container is stopped (those already stopped are started). */
  signal?: AbortSignal;
  onStopping?: (container: StoppedContainer) => void;
  onStarted?: (container: StoppedContainer) => void;
}

export interface LeftStopped {
  container: StoppedContainer;
  reason: string;
}

/**
 * Containers we stopped and could not start again. Always a failure: a service stays down, so the
 * command must not exit 0. It exits 128+N when the run was also interrupted by signal N.
 */
export class ContainersLeftStoppedError extends StowageError {
  constructor(
    readonly left: readonly LeftStopped[],
    readonly workError?: unknown,
  ) {
    super(
      "EXEC_FAILED",
      left
        .map(
          ({ container, reason }) =>
            `container ${container.name} was stopped and could not be started again: ${reason}`,
        )
        .join("\n"),
    );
  }

  override get exitCode(): number {
    return this.workError instanceof InterruptedError ? this.workError.exitCode : super.exitCode;
  }
}

/**
 * Run `work` with these containers stopped (in this order), and ALWAYS start them again, in the
 * reverse order: after success, after an error, and after an interruption (the caller's signal;
 * `work` is expected to wind down on it). A container whose stop failed half-way is started too.
 * One that cannot be started is reported by a ContainersLeftStoppedError naming each and why,
 * after every other one was started.
 */
export async function withContainersStopped<T>(
  docker: Docker,
  containers: readonly StoppedContainer[],
  options: StopOptions,
  work: () => Promise<T>,
): Promise<T> {
  const stopped: StoppedContainer[] = [];
  let outcome: { value: T } | { error: unknown };
  try {
    for (const container of containers) {
      if (options.signal?.aborted) throw options.signal.reason;
      options.onStopping?.(container);
      stopped.push(container);
      await stopContainer(docker, container.id, options.timeoutSeconds);
    }
    outcome = { value: await work() };
  } catch (error) {
    outcome = { error };
  }
  const left: LeftStopped[] = [];
  for (const container of stopped.reverse()) {
    try {
      await startContainer(docker, container.id);
      options.onStarted?.(container);
    } catch (error) {
      left.push({ container, reason: (error as Error).message });
    }
  }
  if (left.length > 0)
    throw new ContainersLeftStoppedError(left, "error" in outcome ? outcome.error : undefined);
  if ("error" in outcome) throw outcome.error;
  return outcome.value;
}
