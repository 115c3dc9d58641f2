import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../../system/atomic-write.js";
import { ConfigError } from "../../system/errors.js";
import type { Logger } from "../../system/log.js";
import { repoKey } from "../repo-path.js";
import type { Storage } from "../storage.js";
import { type MaintainConfig, matchesPattern, type RepoPolicy } from "./config.js";
import { maintainRepo, type RepoReport } from "./maintain-repo.js";

export interface MaintenanceOptions {
  config: MaintainConfig;
  /** The server's own storage (repositories, the times snapshots were stored, sizes). */
  storage: Storage;
  /** The server's base URL restic goes through. */
  server: string;
  reportDir: string;
  force: boolean;
  dryRun: boolean;
  /** Only this repository (which must match an entry). */
  only?: readonly string[];
  /** Only these entries of the file (a schedule's due ones); default all. */
  policies?: readonly RepoPolicy[];
  signal?: AbortSignal;
  log: Logger;
}

/** The maintenance user's password: the first line of its file (the file's mode is checked on load). */
async function identityPassword(file: string): Promise<string> {
  const text = await readFile(file, "utf8").catch((error: unknown) => {
    throw new ConfigError(`password file ${file}: ${(error as Error).message}`);
  });
  const password = text.split(/\r?\n/)[0] ?? "";
  if (password === "") throw new ConfigError(`password file ${file} is empty`);
  return password;
}

/** Each repository with the first entry of the file that names it. */
async function planned(options: MaintenanceOptions): Promise<Array<{ repo: string[]; policy: RepoPolicy }>> {
  const policies = options.policies ?? options.config.repos;
  const repos = options.only ? [[...options.only]] : await options.storage.repositories();
  const work: Array<{ repo: string[]; policy: RepoPolicy }> = [];
  for (const repo of repos) {
    const policy = options.config.repos.find((entry) => matchesPattern(entry.pattern, repo));
    if (policy && policies.includes(policy)) work.push({ repo, policy });
  }
  if (options.only && work.length === 0)
    throw new ConfigError(`--repo ${repoKey(options.only)}: no entry of the maintain file names it`);
  return work;
}

async function writeReport(dir: string, report: RepoReport): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const stamp = report.started.replace(/[:.]/g, "-");
  const file = path.join(
    dir,
    `${stamp}-${report.repo === "" ? "root" : report.repo.replaceAll("/", "_")}.json`,
  );
  await writeFileAtomic(file, `${JSON.stringify(report, null, 2)}\n`, { mode: 0o600 });
  return file;
}

/**
 * Maintain every repository the file names (or one), one after the other: each gets a report
 * (JSON, in the report folder) and a log line; never a password in either.
 */
export async function runMaintenance(options: MaintenanceOptions): Promise<RepoReport[]> {
  const password = await identityPassword(options.config.passwordFile);
  const identity = { server: options.server, user: options.config.user, password };
  const reports: RepoReport[] = [];
  for (const { repo, policy } of await planned(options)) {
    options.signal?.throwIfAborted();
    const report = await maintainRepo(
      {
        identity,
        storage: options.storage,
        force: options.force,
        dryRun: options.dryRun,
        ...(options.signal ? { signal: options.signal } : {}),
      },
      repo,
      policy,
    );
    const file = await writeReport(options.reportDir, report);
    const fine =
      report.outcome === "done" || report.outcome === "nothing to forget" || report.outcome === "dry run";
    options.log[fine ? "info" : "warn"](
      {
        action: "maintain",
        repo: `/${report.repo}`,
        outcome: report.outcome,
        forgotten: report.snapshots.forgotten.length,
        protected: report.snapshots.protected.length,
        freed: report.bytes.freed,
        report: file,
        ...(report.reason ? { reason: report.reason } : {}),
      },
      `maintain: ${report.outcome}`,
    );
    reports.push(report);
  }
  return reports;
}

/** A run needs attention: something refused or failed. */
export function needsAttention(reports: readonly RepoReport[]): boolean {
  return reports.some((report) => report.outcome === "refused" || report.outcome === "failed");
}
