import { spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { once } from "node:events";
import { access, mkdir, rmdir } from "node:fs/promises";
import path from "node:path";
import type { Duplex } from "node:stream";
import { signalExitStatus } from "../system/errors.js";
import { withLock } from "../system/lock.js";
import { STOP_SIGNALS } from "../system/signals.js";
import { createJournal, recoverDeadRuns } from "./journal.js";
import { libDir, runBase, stateDir } from "./locations.js";
import { recoveryProblems } from "./recovery-report.js";
import type { StateScript } from "./scripts.js";

export interface RunOptions {
  scripts: StateScript[];
  pathsDir: string;
  command: string[];
  target: string | undefined;
  quiet: boolean;
  verbose: boolean;
  stateDir: string | undefined;
  /** Seconds the command gets after a forwarded signal before SIGKILL. */
  graceSeconds: number;
  /** Exported to state scripts as VERSION. */
  version: string;
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

export function newRunId(): string {
  return Array.from({ length: 10 }, () => ALPHANUMERIC[randomInt(ALPHANUMERIC.length)]).join("");
}

/** SELinux is enabled (enforcing or permissive) when selinuxfs shows its enforce switch. */
async function selinuxEnabled(): Promise<boolean> {
  return access("/sys/fs/selinux/enforce").then(
    () => true,
    () => false,
  );
}

/**
 * One run: lock the paths dir, recover dead runs, make the run and target dirs and the journal,
 * then hand over to runner.sh inside its own mount and PID namespaces, forwarding signals to it. Returns
 * the exit status (the command's, a state script's, 127, or 128+N).
 *
 * The lock is a kernel lock on the paths dir itself, and the runner keeps a descriptor of it (its
 * fd 4): a run holds it until every process of the run is gone, even when this process is killed
 * first, so a next run never starts beside one that is still tearing down.
 */
export async function runState(options: RunOptions): Promise<number> {
  const lib = libDir();
  const state = stateDir(options.stateDir);
  return withLock(
    options.pathsDir,
    async (lock) => {
      const recovered = await recoverDeadRuns(state, lib, { trace: options.verbose });
      for (const line of recoveryProblems(recovered)) process.stderr.write(`${line}\n`);
      const runId = newRunId();
      const runDir = path.join(runBase(), runId);
      await mkdir(runDir, { recursive: true, mode: 0o700 });
      const target = options.target ?? path.join(runDir, "target");
      const ownTarget = options.target === undefined;
      if (ownTarget) await mkdir(target, { mode: 0o755 });
      else await mkdir(target, { recursive: true });
      // Replayed last-in first-out: the target dir goes before the run dir.
      const journal = await createJournal(state, runId, ownTarget ? [runDir, target] : [runDir]);
      try {
        return await spawnRunner(lib, options, {
          runId,
          runDir,
          target,
          journal,
          ownTarget,
          lockFd: lock.fd,
        });
      } finally {
        if (ownTarget) await rmdir(target).catch(() => {});
        await rmdir(runDir).catch(() => {});
      }
    },
    // A live run makes the next one wait 10 s, then fail as busy (exit 75).
    { timeoutMs: 10_000 },
  );
}

async function spawnRunner(
  lib: string,
  options: RunOptions,
  run: { runId: string; runDir: string; target: string; journal: string; ownTarget: boolean; lockFd: number },
): Promise<number> {
  const scriptArgs = options.scripts.flatMap((script) => [script.id, script.file]);
  const child = spawn(
    "unshare",
    [
      // slave: mounts the host makes later (an external drive) still show up here; ours never leave.
      ...["--mount", "--pid", "--fork", "--kill-child", "--propagation", "slave"],
      "bash",
      path.join(lib, "runner.sh"),
      ...scriptArgs,
      "--",
      ...options.command,
    ],
    {
      stdio: ["inherit", "inherit", "inherit", "pipe", run.lockFd],
      env: {
        ...process.env,
        LIB_DIR: lib,
        RUN_ID: run.runId,
        RUN_DIR: run.runDir,
        TARGET_DIR: run.target,
        SCRIPTS_DIR: options.pathsDir,
        QUIET: String(options.quiet),
        VERBOSE: String(options.verbose),
        SELINUX: String(await selinuxEnabled()),
        VERSION: options.version,
        STATECRAFT_JOURNAL: run.journal,
        STATECRAFT_TARGET_TMPFS: String(run.ownTarget),
        STATECRAFT_GRACE: String(options.graceSeconds),
      },
    },
  );
  // fd 3 is a socket pair: the runner sends its host PID over it, and its watchdog tears the run
  // down when this process dies and the socket closes.
  const lifeline = child.stdio[3] as Duplex;
  lifeline.on("error", () => {});
  const runnerPid = firstLine(lifeline).then((line) => {
    const pid = Number(line);
    if (!Number.isInteger(pid) || pid <= 1)
      throw new Error(`runner reported an invalid PID: ${JSON.stringify(line)}`);
    return pid;
  });
  runnerPid.catch(() => {});
  // Signals go to the runner itself: unshare would die of them and take the runner down uncleanly.
  const forward = (signal: NodeJS.Signals) => {
    runnerPid.then((pid) => process.kill(pid, signal)).catch(() => {});
  };
  for (const signal of STOP_SIGNALS) process.on(signal, forward);
  try {
    const [code, signal] = (await once(child, "exit")) as [number | null, NodeJS.Signals | null];
    if (code !== null) return code;
    // The runner itself was killed: replay its journal now so nothing is left behind.
    await recoverDeadRuns(stateDir(options.stateDir), lib, { trace: options.verbose });
    return signalExitStatus(signal ?? "SIGKILL");
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, forward);
    lifeline.destroy();
  }
}

function firstLine(stream: Duplex): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      const newline = text.indexOf("\n");
      if (newline < 0) return;
      stream.off("data", onData);
      resolve(text.slice(0, newline));
    };
    stream.on("data", onData);
    stream.once("close", () => reject(new Error("runner ended before reporting its PID")));
  });
}
