import { type FileHandle, mkdir, open, readFile } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../../system/atomic-write.js";
import { isErrno } from "../../system/errors.js";
import { BLOB_TYPES, type ObjectType } from "../repo-path.js";

/** One object the mirror still has to get (copy) or lose (delete, once due). */
export interface QueueEntry {
  seq: number;
  op: "copy" | "delete";
  repo: string[];
  type: ObjectType;
  name?: string;
  /** When it was recorded (ms since the epoch). */
  at: number;
}

const FILE = "queue.jsonl";
/** Rewrite the file with only what is pending once it holds this many lines more than that. */
const COMPACT_SLACK = 20_000;
const TYPES: ReadonlySet<string> = new Set([...BLOB_TYPES, "config"]);

type Line = QueueEntry | { seq: number; op: "done" };

function parseLine(text: string): Line | undefined {
  try {
    const line = JSON.parse(text) as Omit<Partial<QueueEntry>, "op"> & { op?: string };
    if (typeof line.seq !== "number") return undefined;
    if (line.op === "done") return { seq: line.seq, op: "done" };
    const known =
      (line.op === "copy" || line.op === "delete") &&
      Array.isArray(line.repo) &&
      typeof line.type === "string" &&
      TYPES.has(line.type) &&
      typeof line.at === "number";
    return known ? (line as QueueEntry) : undefined;
  } catch {
    // The torn last line of a crash.
    return undefined;
  }
}

/** What the queue holds now (recorded and not finished), for a rewrite. */
export interface PendingSource {
  readonly size: number;
  entries(): Iterable<QueueEntry>;
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * The mirror queue on disk: an append-only file of JSON lines, one per recorded entry and one per
 * finished one. A recorded entry is durable when its promise resolves (fdatasync), and every entry
 * recorded at the same moment shares one sync (group commit); a finished mark is written with the
 * next write and never waited for (lost, the copy is made once more, which changes nothing).
 * Writes go one at a time. On open, and when the file has grown well past what is pending, it is
 * rewritten with the pending entries only (temp file, fsync, rename).
 */
export class Journal {
  private buffered: string[] = [];
  private waiters: Waiter[] = [];
  private writing: Promise<void> | undefined;
  private linesInFile = 0;

  private constructor(
    private readonly file: string,
    private handle: FileHandle,
    private readonly pending: PendingSource,
  ) {}

  /** Open (or make) the queue in `dir`: the entries still pending, in order, and the next number. */
  static async open(
    dir: string,
    pending: PendingSource,
  ): Promise<{ journal: Journal; entries: QueueEntry[]; nextSeq: number }> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, FILE);
    let text = "";
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if (!isErrno(error, "ENOENT")) throw error;
    }
    const found = new Map<number, QueueEntry>();
    let nextSeq = 1;
    for (const raw of text.split("\n")) {
      if (raw === "") continue;
      const line = parseLine(raw);
      if (!line) continue;
      nextSeq = Math.max(nextSeq, line.seq + 1);
      if (line.op === "done") found.delete(line.seq);
      else found.set(line.seq, line);
    }
    const entries = [...found.values()].sort((a, b) => a.seq - b.seq);
    await writeFileAtomic(file, entries.map((entry) => `${JSON.stringify(entry)}\n`).join(""), {
      mode: 0o600,
    });
    const journal = new Journal(file, await open(file, "a"), pending);
    journal.linesInFile = entries.length;
    return { journal, entries, nextSeq };
  }

  /** Append an entry; resolves once it is on the disk. */
  record(entry: QueueEntry): Promise<void> {
    return new Promise((resolve, reject) => {
      this.buffered.push(`${JSON.stringify(entry)}\n`);
      this.waiters.push({ resolve, reject });
      this.kick();
    });
  }

  /** Mark an entry finished (copied, deleted, given up, or its upload failed). */
  done(seq: number): void {
    this.buffered.push(`${JSON.stringify({ seq, op: "done" })}\n`);
    this.kick();
  }

  private kick(): void {
    this.writing ??= this.writeAll().finally(() => {
      this.writing = undefined;
      if (this.buffered.length > 0) this.kick();
    });
  }

  private async writeAll(): Promise<void> {
    while (this.buffered.length > 0) {
      const lines = this.buffered;
      const waiters = this.waiters;
      this.buffered = [];
      this.waiters = [];
      try {
        if (this.linesInFile + lines.length > this.pending.size + COMPACT_SLACK) await this.compact();
        else {
          await this.handle.write(lines.join(""));
          this.linesInFile += lines.length;
          if (waiters.length > 0) await this.handle.datasync();
        }
        for (const waiter of waiters) waiter.resolve();
      } catch (error) {
        for (const waiter of waiters) waiter.reject(error);
      }
    }
  }

  /** Rewrite the file with the pending entries (those whose lines are still buffered among them). */
  private async compact(): Promise<void> {
    const entries = [...this.pending.entries()].sort((a, b) => a.seq - b.seq);
    await writeFileAtomic(this.file, entries.map((entry) => `${JSON.stringify(entry)}\n`).join(""), {
      mode: 0o600,
    });
    await this.handle.close();
    this.handle = await open(this.file, "a");
    this.linesInFile = entries.length;
  }

  async close(): Promise<void> {
    while (this.writing) await this.writing;
    await this.handle.close();
  }
}
