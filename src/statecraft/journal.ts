import { mkdir, readdir, readFile, unlink } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../system/atomic-write.js";
import { ConfigError, isErrno } from "../system/errors.js";
import { ExecError, run } from "../system/exec.js";
import { acquireLock } from "../system/lock.js";
import { ownerLine, ownersAlive } from "../system/owned-journal.js";
import { shellQuote } from "../system/shell-quote.js";
import { journalDir } from "./locations.js";

/** Exit status of replay.sh when entries must wait for a filesystem that is not attached. */
export const WAIT_STATUS = 75;

function journalEntry(text: string): string {
  return `E ${Buffer.from(text).toString("base64")}\n`;
}

/** Start a run's journal: who owns it, and the last cleanup actions (remove our directories). */
export async function createJournal(
  state: string,
  runId: string,
  removeDirs: readonly string[],
): Promise<string> {
  const dir = journalDir(state);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${runId}.journal`);
  const owner = await ownerLine();
  const entries = removeDirs.map((dirPath) =>
    journalEntry(`rmdir ${shellQuote(dirPath)} 2>/dev/null || true`),
  );
  // Whole or not at all: a --recover running meanwhile never sees a journal without its owner.
  await writeFileAtomic(file, owner + entries.join(""), { mode: 0o600 });
  return file;
}

/** A journal belongs to a live run while any process recorded in it still runs. */
export async function journalIsLive(file: string): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if (isErrno(error, "ENOENT")) return false;
    throw error;
  }
  return ownersAlive(text);
}

export interface WaitingJournal {
  file: string;
  runId: string;
  /** UUIDs of the filesystems whose snapshots could not be removed because they are not attached. */
  missingFilesystems: string[];
}

export interface RecoveryResult {
  replayed: string[];
  failed: string[];
  live: string[];
  /** Dead runs whose cleanup must wait for a filesystem to come back; their journals are kept. */
  waiting: WaitingJournal[];
}

export function runIdOf(file: string): string {
  return path.basename(file, ".journal");
}

function missingFilesystems(stderr: string): string[] {
  const found = [...stderr.matchAll(/statecraft: filesystem (\S+) is not attached/g)].map((m) => m[1] ?? "");
  return [...new Set(found)].sort();
}

/** Replay, in a private mount namespace, the journal of every dead run; skip live ones. */
export async function recoverDeadRuns(
  state: string,
  lib: string,
  options: { trace?: boolean; except?: string } = {},
): Promise<RecoveryResult> {
  const dir = journalDir(state);
  const result: RecoveryResult = { replayed: [], failed: [], live: [], waiting: [] };
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => name.endsWith(".journal"));
  } catch (error) {
    if (isErrno(error, "ENOENT")) return result;
    throw error;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    if (file === options.except) continue;
    if (await journalIsLive(file)) {
      result.live.push(file);
      continue;
    }
    // Another statecraft may be replaying it right now: leave it to that one.
    const lock = await acquireLock(file, { timeoutMs: 0, create: false }).catch(() => undefined);
    if (!lock) continue;
    try {
      await run(
        "unshare",
        ["--mount", "--propagation", "private", "bash", path.join(lib, "replay.sh"), file],
        {
          env: { ...process.env, LIB_DIR: lib, VERBOSE: options.trace ? "true" : "false", QUIET: "true" },
          trace: options.trace ?? false,
        },
      );
      result.replayed.push(file);
    } catch (error) {
      if (error instanceof ExecError && error.status === WAIT_STATUS) {
        result.waiting.push({
          file,
          runId: runIdOf(file),
          missingFilesystems: missingFilesystems(error.stderr),
        });
      } else {
        result.failed.push(file);
      }
    } finally {
      lock.release();
    }
  }
  return result;
}

/** The cleanup actions still recorded in a journal, newest first (as a replay would run them). */
export function pendingActions(text: string): string[] {
  return text
    .split("\n")
    .filter((line) => line.startsWith("E "))
    .map((line) => Buffer.from(line.slice(2), "base64").toString("utf8"))
    .reverse();
}

/**
 * Drop a dead run's journal on purpose (`--forget RUN_ID`), e.g. when the disk it snapshotted is
 * gone for good. Refuses a live run. Returns the actions that will now never run, for the user.
 */
export async function forgetRun(state: string, runId: string): Promise<string[]> {
  if (!/^[A-Za-z0-9]{10}$/.test(runId)) {
    throw new ConfigError(
      `--forget ${runId}: a run ID is 10 letters and digits (see 'statecraft --recover')`,
    );
  }
  const file = path.join(journalDir(state), `${runId}.journal`);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if (isErrno(error, "ENOENT"))
      throw new ConfigError(`no journal for run ${runId} in ${journalDir(state)}`);
    throw error;
  }
  if (await journalIsLive(file)) throw new ConfigError(`run ${runId} is still running; it cleans up itself`);
  const lock = await acquireLock(file, { timeoutMs: 0, create: false });
  try {
    await unlink(file);
  } finally {
    lock.release();
  }
  return pendingActions(text);
}
