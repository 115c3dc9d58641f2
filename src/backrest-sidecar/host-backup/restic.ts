import { readFile } from "node:fs/promises";
import { ConfigError } from "../../system/errors.js";
import { type ExecOptions, run } from "../../system/exec.js";
import { LineReader } from "../../system/line-reader.js";

/** restic 0.14 removes its repository lock on SIGINT only; SIGTERM would leave a stale lock. */
export const RESTIC_STOP: NodeJS.Signals = "SIGINT";

/** What `restic backup --json` reports at the end. */
export interface BackupSummary {
  snapshotId: string;
  filesNew: number;
  filesChanged: number;
  filesUnmodified: number;
  dataAdded: number;
  totalFiles: number;
  totalBytes: number;
  seconds: number;
}

/** Reads `--json` output as it streams, keeping only the summary line (status lines can be many). */
export class SummaryReader {
  summary: BackupSummary | undefined;
  private readonly lines = new LineReader((line) => this.line(line));
  push = this.lines.push;

  end(): BackupSummary | undefined {
    this.lines.end();
    return this.summary;
  }

  private line(line: string): void {
    if (!line.includes('"summary"')) return;
    try {
      const data = JSON.parse(line) as Record<string, unknown>;
      if (data.message_type !== "summary") return;
      const n = (key: string) => Number(data[key] ?? 0);
      this.summary = {
        snapshotId: String(data.snapshot_id ?? ""),
        filesNew: n("files_new"),
        filesChanged: n("files_changed"),
        filesUnmodified: n("files_unmodified"),
        dataAdded: n("data_added"),
        totalFiles: n("total_files_processed"),
        totalBytes: n("total_bytes_processed"),
        seconds: n("total_duration"),
      };
    } catch {
      // Not JSON after all: a warning line of restic's.
    }
  }
}

/** Entries of a snapshot and bytes of its regular files, from `restic ls --json` (streamed). */
export async function snapshotContents(
  context: ResticContext,
  snapshotId: string,
): Promise<{ entries: number; bytes: number }> {
  const totals = { entries: 0, bytes: 0 };
  const lines = new LineReader((line) => {
    if (!line.startsWith("{")) return;
    const node = JSON.parse(line) as { struct_type?: string; type?: string; size?: number };
    if (node.struct_type !== "node") return;
    totals.entries++;
    if (node.type === "file") totals.bytes += node.size ?? 0;
  });
  await run(
    "restic",
    ["ls", "--json", "--no-lock", snapshotId],
    resticOptions(context, { onStdout: lines.push }),
  );
  lines.end();
  return totals;
}

export interface ResticSnapshot {
  id: string;
  short_id: string;
  time: string;
  paths: string[];
  tags?: string[];
}

/** Options every restic call gets: its environment (repository, password) and the abort signal. */
export interface ResticContext {
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Flags of the calls that lock the repository: how long to wait for another restic's lock. */
  lockFlags?: readonly string[];
}

/** How long a backup waits for another restic's lock (Backrest's forget or prune after its backups). */
export const LOCK_WAIT = "10m";

/**
 * `--retry-lock` where the restic on PATH has it (0.16 and later): a repository locked by another
 * restic is waited for instead of failing at once. Older restic (Debian bookworm's 0.14) fails
 * naming the lock, as before.
 */
export async function lockWaitFlags(env: NodeJS.ProcessEnv): Promise<string[]> {
  const result = await run("restic", ["version"], { env, okStatuses: [0, 1] }).catch(() => undefined);
  const version = /^restic (\d+)\.(\d+)\./.exec(result?.stdout ?? "");
  if (!version) return [];
  const [major, minor] = [Number(version[1]), Number(version[2])];
  return major > 0 || minor >= 16 ? ["--retry-lock", LOCK_WAIT] : [];
}

export function resticOptions(context: ResticContext, extra: ExecOptions = {}): ExecOptions {
  return {
    env: context.env,
    ...(context.signal ? { signal: context.signal } : {}),
    stopSignal: RESTIC_STOP,
    ...extra,
  };
}

/** The snapshots whose paths include `pathFilter` (and that carry `tag`), oldest first. */
export async function listSnapshots(
  context: ResticContext,
  filters: { path?: string; tag?: string } = {},
): Promise<ResticSnapshot[]> {
  const args = ["snapshots", "--json", "--no-lock"];
  if (filters.path) args.push("--path", filters.path);
  if (filters.tag) args.push("--tag", filters.tag);
  const result = await run("restic", args, resticOptions(context, { maxStdoutBytes: 256 * 1024 * 1024 }));
  const snapshots = (JSON.parse(result.stdout || "[]") ?? []) as ResticSnapshot[];
  return snapshots.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}

/** KEY=VALUE lines (docker --env-file syntax: # comments, no quoting). */
export async function readEnvFile(file: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  const text = await readFile(file, "utf8").catch((error: Error) => {
    throw new ConfigError(`cannot read env file ${file}: ${error.message}`);
  });
  for (const line of text.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const equals = trimmed.indexOf("=");
    if (equals <= 0) throw new ConfigError(`${file}: '${trimmed.slice(0, 40)}' is not KEY=VALUE`);
    env[trimmed.slice(0, equals)] = trimmed.slice(equals + 1);
  }
  return env;
}

/** The restic settings of a run: the environment plus --rcb-env-file, checked for a repository and password. */
export async function resticEnvironment(envFile: string | undefined): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...(envFile ? await readEnvFile(envFile) : {}) };
  if (!env.RESTIC_REPOSITORY && !env.RESTIC_REPOSITORY_FILE) {
    throw new ConfigError("no restic repository: set RESTIC_REPOSITORY (environment or --rcb-env-file)");
  }
  if (!env.RESTIC_PASSWORD && !env.RESTIC_PASSWORD_FILE && !env.RESTIC_PASSWORD_COMMAND) {
    throw new ConfigError(
      "no restic password: set RESTIC_PASSWORD or RESTIC_PASSWORD_FILE (environment or --rcb-env-file)",
    );
  }
  return env;
}
