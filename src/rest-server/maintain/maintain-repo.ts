import { forgetFlags } from "../../restic/keep.js";
import { ExecError, run } from "../../system/exec.js";
import { BLOB_TYPES, repoKey } from "../repo-path.js";
import type { Storage } from "../storage.js";
import type { RepoPolicy } from "./config.js";

/** A client's clock may run ahead of the server's by this much before its snapshot counts as forged. */
const CLOCK_SKEW_MS = 3_600_000;

export interface MaintenanceIdentity {
  /** The rest-server's base URL (`http://host:port`). */
  server: string;
  user: string;
  /** Its htpasswd password (read from its file; only ever put in restic's environment). */
  password: string;
}

interface Snapshot {
  id: string;
  short_id?: string;
  time: string;
  hostname?: string;
  paths?: string[];
}

export interface ProtectedSnapshot {
  id: string;
  reason: string;
}

export interface RepoReport {
  repo: string;
  started: string;
  finished: string;
  /** done: forgotten and pruned (or nothing to forget); refused: a safeguard stopped it; failed: restic did. */
  outcome: "done" | "nothing to forget" | "dry run" | "refused" | "failed";
  reason?: string;
  policy: { keep: string[]; minAgeSeconds: number; maxForgetShare: number; forced: boolean };
  snapshots: {
    before: number;
    kept: string[];
    forgotten: string[];
    /** Removed by the policy, kept by a safeguard. */
    protected: ProtectedSnapshot[];
  };
  forgetShare: number;
  check: { before: "passed" | "failed" | "not run"; after: "passed" | "failed" | "not run" };
  bytes: { before: number; after: number; freed: number };
}

export interface MaintainRun {
  identity: MaintenanceIdentity;
  storage: Storage;
  force: boolean;
  dryRun: boolean;
  signal?: AbortSignal;
}

/** restic against one repository of the server, as the maintenance user; its key's password from a file. */
function restic(run_: MaintainRun, repo: readonly string[], passwordFile: string) {
  const url = new URL(run_.identity.server);
  url.username = run_.identity.user;
  url.password = run_.identity.password;
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/${repo.map(encodeURIComponent).join("/")}${repo.length ? "/" : ""}`;
  // Credentials go in the environment (readable by this user and root only), never in argv.
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith("RESTIC_")) env[name] = value;
  env.RESTIC_REPOSITORY = `rest:${url.toString()}`;
  env.RESTIC_PASSWORD_FILE = passwordFile;
  return (args: readonly string[], okStatuses: number[] = [0]) =>
    run("restic", ["--no-cache", ...args], {
      env,
      okStatuses,
      stopSignal: "SIGINT",
      ...(run_.signal ? { signal: run_.signal } : {}),
    });
}

/** Bytes a repository holds (everything but locks). */
async function repoBytes(storage: Storage, repo: readonly string[]): Promise<number> {
  let bytes = (await storage.size({ repo, type: "config" })) ?? 0;
  for (const type of BLOB_TYPES) {
    if (type === "locks") continue;
    for await (const batch of (await storage.list(repo, type, true)) ?? [])
      for (const entry of batch) bytes += entry.size;
  }
  return bytes;
}

/** What restic said, shortened to its last lines (never a password: restic prints none). */
function said(error: unknown): string {
  const text = error instanceof ExecError ? `${error.stderr}\n${error.stdout}` : (error as Error).message;
  return text.trim().split("\n").slice(-3).join(" / ");
}

/**
 * Maintain one repository of an append-only server as its policy says, with the safeguards that
 * keep maintain from becoming an attacker's tool: `check` must pass first; a snapshot stored within
 * the minimum age (the storage's clock, not the time the snapshot claims) is never forgotten; a
 * snapshot that claims a time after it was stored is forged (or its client's clock is wrong) and
 * stops the run; and a run that would forget more than the allowed share of the snapshots is
 * refused unless forced. Then forget, prune, and check again.
 */
export async function maintainRepo(
  run_: MaintainRun,
  repo: readonly string[],
  policy: RepoPolicy,
): Promise<RepoReport> {
  const now = Date.now();
  const report: RepoReport = {
    repo: repoKey(repo),
    started: new Date(now).toISOString(),
    finished: "",
    outcome: "done",
    policy: {
      keep: forgetFlags(policy.keep),
      minAgeSeconds: policy.minAgeMs / 1000,
      maxForgetShare: policy.maxShare,
      forced: run_.force,
    },
    snapshots: { before: 0, kept: [], forgotten: [], protected: [] },
    forgetShare: 0,
    check: { before: "not run", after: "not run" },
    bytes: { before: 0, after: 0, freed: 0 },
  };
  const end = (outcome: RepoReport["outcome"], reason?: string): RepoReport => {
    report.outcome = outcome;
    if (reason !== undefined) report.reason = reason;
    report.finished = new Date().toISOString();
    return report;
  };
  const resticOf = restic(run_, repo, policy.passwordFile);
  report.bytes.before = await repoBytes(run_.storage, repo);
  report.bytes.after = report.bytes.before;

  try {
    await resticOf(["check"]);
    report.check.before = "passed";
  } catch (error) {
    report.check.before = "failed";
    return end("refused", `check failed before anything was forgotten: ${said(error)}`);
  }

  let snapshots: Snapshot[];
  let plan: Array<{ keep: Snapshot[] | null; remove: Snapshot[] | null }>;
  try {
    snapshots = JSON.parse((await resticOf(["snapshots", "--json"])).stdout) as Snapshot[];
    const groupBy = policy.groupBy === undefined ? [] : ["--group-by", policy.groupBy];
    plan = JSON.parse(
      (await resticOf(["forget", "--dry-run", "--json", ...groupBy, ...forgetFlags(policy.keep)])).stdout,
    ) as typeof plan;
  } catch (error) {
    return end("failed", `restic could not list or plan: ${said(error)}`);
  }
  report.snapshots.before = snapshots.length;

  const stored = await run_.storage.storedTimes(repo, "snapshots");
  const forged = snapshots.filter((snapshot) => {
    const at = stored.get(snapshot.id);
    return at !== undefined && Date.parse(snapshot.time) > at + CLOCK_SKEW_MS;
  });
  if (forged.length > 0 && !run_.force)
    return end(
      "refused",
      `${forged.length} snapshot(s) claim a time after they were stored (forged, or a client's clock runs ahead): ${forged
        .map(
          (snapshot) =>
            `${snapshot.id.slice(0, 8)} claims ${snapshot.time}, stored ${new Date(stored.get(snapshot.id) as number).toISOString()}`,
        )
        .join("; ")}`,
    );

  const removed = plan.flatMap((group) => group.remove ?? []);
  report.snapshots.kept = plan.flatMap((group) => (group.keep ?? []).map((snapshot) => snapshot.id));
  const forget: string[] = [];
  for (const snapshot of removed) {
    // The younger of the two times: a snapshot that claims to be old but was stored lately is young.
    const at = Math.max(stored.get(snapshot.id) ?? now, Date.parse(snapshot.time) || 0);
    if (now - at < policy.minAgeMs)
      report.snapshots.protected.push({
        id: snapshot.id,
        reason: `stored ${new Date(at).toISOString()}, younger than the minimum age of ${policy.minAgeMs / 1000} s`,
      });
    else forget.push(snapshot.id);
  }
  report.snapshots.kept.push(...report.snapshots.protected.map((snapshot) => snapshot.id));
  report.forgetShare = snapshots.length === 0 ? 0 : forget.length / snapshots.length;
  if (report.forgetShare > policy.maxShare && !run_.force) {
    report.snapshots.kept.push(...forget);
    return end(
      "refused",
      `would forget ${forget.length} of ${snapshots.length} snapshots (${(report.forgetShare * 100).toFixed(0)}%), more than the allowed ${(policy.maxShare * 100).toFixed(0)}%: forged snapshots may be pushing real ones out; look at them, then run with --force if this is meant`,
    );
  }
  if (forget.length === 0) return end("nothing to forget");
  if (run_.dryRun) {
    report.snapshots.forgotten = forget;
    return end("dry run");
  }

  try {
    await resticOf(["forget", ...forget]);
    report.snapshots.forgotten = forget;
    await resticOf(["prune"]);
  } catch (error) {
    report.bytes.after = await repoBytes(run_.storage, repo);
    return end("failed", `forget or prune failed: ${said(error)}`);
  }
  report.bytes.after = await repoBytes(run_.storage, repo);
  report.bytes.freed = Math.max(0, report.bytes.before - report.bytes.after);
  try {
    await resticOf(["check"]);
    report.check.after = "passed";
  } catch (error) {
    report.check.after = "failed";
    return end("failed", `check failed after prune: ${said(error)}`);
  }
  return end("done");
}
