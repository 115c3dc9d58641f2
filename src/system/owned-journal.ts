import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { mkdir, readdir, readFile, unlink } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "./atomic-write.js";
import { isErrno } from "./errors.js";
import { processAlive, processStartTime } from "./process.js";

/** The line that heads a journal: this process's PID and start time (a reused PID is not it). */
export async function ownerLine(): Promise<string> {
  return `P ${process.pid} ${await processStartTime(process.pid)}\n`;
}

/** Does any owner line (`P PID START`) of a journal's text name a process that still runs? */
export async function ownersAlive(text: string): Promise<boolean> {
  for (const line of text.split("\n")) {
    const [kind, pid, start] = line.split(" ");
    if (kind === "P" && pid && start && (await processAlive(Number(pid), start))) return true;
  }
  return false;
}

/**
 * A journal of things a process is about to do, each line fsynced before it does it, headed by the
 * owner (PID and start time, so a reused PID is not mistaken for it). A process that dies leaves it
 * for the next one to undo or finish what it names; one that ends removes it.
 */
export class OwnedJournal {
  private constructor(readonly file: string) {}

  /** `<dir>/<name>` (dir made 0700), owned by this process. */
  static async create(dir: string, name: string): Promise<OwnedJournal> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, name);
    await writeFileAtomic(file, await ownerLine(), { mode: 0o600 });
    return new OwnedJournal(file);
  }

  /** Records, written down for good (fsync) before this returns. */
  append(records: readonly unknown[]): void {
    const fd = openSync(this.file, "a");
    try {
      for (const record of records) writeSync(fd, `R ${JSON.stringify(record)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  async remove(): Promise<void> {
    await unlink(this.file).catch(() => {});
  }
}

export interface LeftJournal<T> {
  file: string;
  records: T[];
}

/**
 * The journals named `*<suffix>` in `dir` whose owners are dead, with their records (a line torn by
 * a crash is skipped: it was written before anything it names was done). Live owners' are left.
 */
export async function deadJournals<T>(dir: string, suffix: string): Promise<LeftJournal<T>[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => name.endsWith(suffix));
  } catch (error) {
    if (isErrno(error, "ENOENT")) return [];
    throw error;
  }
  const left: LeftJournal<T>[] = [];
  for (const name of names.sort()) {
    const file = path.join(dir, name);
    const text = await readFile(file, "utf8");
    if (await ownersAlive(text)) continue;
    const records: T[] = [];
    for (const line of text.split("\n")) {
      if (!line.startsWith("R ")) continue;
      try {
        records.push(JSON.parse(line.slice(2)) as T);
      } catch {
        // torn by a crash
      }
    }
    left.push({ file, records });
  }
  return left;
}
