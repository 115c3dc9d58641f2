import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { isErrno } from "../system/errors.js";
import { run } from "../system/exec.js";
import { acquireLock } from "../system/lock.js";
import { shellQuote } from "../system/shell-quote.js";
import { journalDir } from "./locations.js";

/** A process's start time (field 22 of /proc/PID/stat), to tell it apart from a reused PID. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces; count fields after its closing parenthesis.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

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
  const owner = `P ${process.pid} ${await processStartTime(process.pid)}\n`;
  const entries = removeDirs.map((dirPath) =>
    journalEntry(`rmdir ${shellQuote(dirPath)} 2>/dev/null || true`),
  );
  await writeFile(file, owner + entries.join(""), { flag: "wx", mode: 0o600 });
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
  for (const line of text.split("\n")) {
    const [kind, pid, start] = line.split(" ");
    if (kind !== "P" || !pid) continue;
    if ((await processStartTime(Number(pid))) === start) return true;
  }
  return false;
}

export interface RecoveryResult {
  replayed: string[];
  failed: string[];
  live: string[];
}

/** Replay, in a private mount namespace, the journal of every dead run; skip live ones. */
export async function recoverDeadRuns(
  state: string,
  lib: string,
  options: { trace?: boolean; except?: string } = {},
): Promise<RecoveryResult> {
  const dir = journalDir(state);
  const result: RecoveryResult = { replayed: [], failed: [], live: [] };
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
    const release = await acquireLock(file, { timeoutMs: 0 }).catch(() => undefined);
    if (!release) continue;
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
    } catch {
      result.failed.push(file);
    } finally {
      await release();
    }
  }
  return result;
}
