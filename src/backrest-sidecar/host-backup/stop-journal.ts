import { randomBytes } from "node:crypto";
import { unlink } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import {
  ContainersLeftStoppedError,
  inspectContainer,
  NoSuchContainerError,
  type StopOptions,
  type StoppedContainer,
  startContainer,
  withContainersStopped,
} from "../../system/docker.js";
import { StowageError } from "../../system/errors.js";
import type { Logger } from "../../system/log.js";
import { deadJournals, OwnedJournal } from "../../system/owned-journal.js";

const SUFFIX = ".stopped";
const journalDir = (stateDir: string) => path.join(stateDir, "journal");

/**
 * withContainersStopped, each container written down (fsync) before it is stopped: when this
 * process is killed (kill -9, OOM) in the window, the next backup-once, restore or `recover`
 * starts what it left stopped. The journal goes once every container runs again.
 */
export async function withContainersStoppedJournaled<T>(
  docker: Docker,
  stateDir: string,
  containers: readonly StoppedContainer[],
  options: StopOptions,
  work: () => Promise<T>,
): Promise<T> {
  if (containers.length === 0) return work();
  const journal = await OwnedJournal.create(
    journalDir(stateDir),
    `${randomBytes(6).toString("hex")}${SUFFIX}`,
  );
  let keep = false;
  try {
    return await withContainersStopped(
      docker,
      containers,
      {
        ...options,
        onStopping: (container) => {
          journal.append([{ id: container.id, name: container.name }]);
          options.onStopping?.(container);
        },
      },
      work,
    );
  } catch (error) {
    // Left stopped: the next run tries to start them again.
    keep = error instanceof ContainersLeftStoppedError;
    throw error;
  } finally {
    if (!keep) await journal.remove();
  }
}

/** Start the containers dead runs left stopped; returns their names. One that cannot start fails. */
export async function recoverStopped(docker: Docker, stateDir: string, log: Logger): Promise<string[]> {
  const started: string[] = [];
  const failed: string[] = [];
  for (const journal of await deadJournals<StoppedContainer>(journalDir(stateDir), SUFFIX)) {
    let complete = true;
    for (const container of journal.records) {
      try {
        const info = await inspectContainer(docker, container.id).catch((error: unknown) => {
          if (error instanceof NoSuchContainerError) return undefined;
          throw error;
        });
        if (!info || info.running) continue;
        await startContainer(docker, container.id);
        started.push(container.name);
        log.warn(
          { action: "recover.started", container: container.name },
          "started a container a crashed run left stopped",
        );
      } catch (error) {
        complete = false;
        failed.push(`${container.name}: ${(error as Error).message}`);
      }
    }
    if (complete) await unlink(journal.file);
  }
  if (failed.length > 0)
    throw new StowageError(
      "EXEC_FAILED",
      `a crashed run left containers stopped that cannot be started: ${failed.join("; ")}`,
    );
  return started;
}
