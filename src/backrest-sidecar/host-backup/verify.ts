import { lstat, mkdtemp, readdir, rm } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import { engineCall } from "../../system/docker.js";
import { run } from "../../system/exec.js";
import type { Logger } from "../../system/log.js";
import type { Workload } from "../workloads/discover.js";
import { backedUp, databaseEngine, dumped, dumpPath, workloadPrefix } from "../workloads/layout.js";
import { selectWorkloads } from "../workloads/select.js";
import { loadDump, waitForDatabase } from "./databases.js";
import { formatTable, partialStatus } from "./report.js";
import { listSnapshots, type ResticContext, resticOptions, snapshotContents } from "./restic.js";
import { loadErrors } from "./restore.js";

export interface VerifyOptions {
  /** Workload names (service, project/service, container, plan id); none: every one backed up. */
  names: readonly string[];
  includeProject: boolean;
  excludeBindMounts: boolean;
  volumesRoot: string;
  planIdPrefix: string;
  /** Where the drill restores to (a temp dir under it, removed after). */
  scratchDir: string;
  databaseTimeoutMs?: number;
  restic: ResticContext;
}

export interface VerifyResult {
  workload: string;
  what: "volumes" | "database";
  snapshot: string;
  files?: number;
  bytes?: number;
  status: "ok" | "failed";
  error?: string;
}

/**
 * Entries (files, directories, links) and bytes of regular files under a directory. Names are
 * bytes (Buffers): a name that is not UTF-8 is counted like any other.
 */
async function countTree(dir: string): Promise<{ entries: number; bytes: number }> {
  let entries = 0;
  let bytes = 0;
  const slash = Buffer.from("/");
  const walk = async (at: Buffer) => {
    for (const entry of await readdir(at, { withFileTypes: true, encoding: "buffer" })) {
      entries++;
      const full = Buffer.concat([at, slash, entry.name]);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) bytes += (await lstat(full)).size;
    }
  };
  await walk(Buffer.from(dir));
  return { entries, bytes };
}

/**
 * `verify`, a restore drill that touches nothing of the real workload: each workload's latest
 * volumes snapshot restored into a temp dir and counted against restic's own statistics of it
 * (entries and bytes; restic checks every blob it reads), and its latest database dump loaded into
 * a throwaway container of the same image (no volumes, no network), which must take it without an
 * error.
 */
export async function verifyWorkloads(
  docker: Docker,
  workloads: readonly Workload[],
  options: VerifyOptions,
  log: Logger,
): Promise<VerifyResult[]> {
  const chosen =
    options.names.length > 0
      ? [...new Set(options.names.flatMap((name) => selectWorkloads(workloads, name, options).slice(0, 1)))]
      : [...new Set([...backedUp(workloads, options), ...dumped(workloads)])];
  const results: VerifyResult[] = [];
  for (const workload of chosen) {
    if (backedUp([workload], options).length > 0) results.push(await verifyVolumes(workload, options, log));
    if (databaseEngine(workload)) results.push(await verifyDatabase(docker, workload, options, log));
  }
  return results;
}

/** One drill: its result ok when `work` returns, failed (logged, named) when it throws. */
async function drill(
  workload: Workload,
  what: VerifyResult["what"],
  options: VerifyOptions,
  log: Logger,
  work: (result: VerifyResult) => Promise<void>,
): Promise<VerifyResult> {
  const result: VerifyResult = { workload: workload.name, what, snapshot: "", status: "failed" };
  try {
    await work(result);
    result.status = "ok";
  } catch (error) {
    if (options.restic.signal?.aborted) throw error;
    result.error = (error as Error).message;
    log.error(
      { action: "verify.failed", container: workload.name, what, err: result.error },
      "restore drill failed",
    );
  }
  return result;
}

function verifyVolumes(workload: Workload, options: VerifyOptions, log: Logger): Promise<VerifyResult> {
  const prefix = workloadPrefix(workload, options.volumesRoot, options.includeProject);
  return drill(workload, "volumes", options, log, async (result) => {
    const latest = (await listSnapshots(options.restic, { path: prefix })).at(-1);
    if (!latest) throw new Error(`no snapshot of ${prefix}`);
    result.snapshot = latest.short_id;
    const expected = await snapshotContents(options.restic, latest.id);
    const target = await mkdtemp(path.join(options.scratchDir, "stowage-verify-"));
    try {
      await run(
        "restic",
        ["restore", ...(options.restic.lockFlags ?? []), latest.id, "--target", target],
        resticOptions(options.restic),
      );
      const counted = await countTree(target);
      result.files = counted.entries;
      result.bytes = counted.bytes;
      if (counted.entries !== expected.entries || counted.bytes !== expected.bytes)
        throw new Error(
          `restored ${counted.entries} entries and ${counted.bytes} bytes, the snapshot holds ${expected.entries} and ${expected.bytes}`,
        );
    } finally {
      await rm(target, { recursive: true, force: true });
    }
  });
}

function verifyDatabase(
  docker: Docker,
  workload: Workload,
  options: VerifyOptions,
  log: Logger,
): Promise<VerifyResult> {
  const file = dumpPath(workload, options.includeProject);
  return drill(workload, "database", options, log, async (result) => {
    const engine = databaseEngine(workload);
    if (!engine) throw new Error("no database label");
    const latest = (await listSnapshots(options.restic, { path: file })).at(-1);
    if (!latest) throw new Error(`no snapshot of ${file}`);
    result.snapshot = latest.short_id;
    const real = await engineCall(docker, `inspect container ${workload.name}`, () =>
      docker.getContainer(workload.id).inspect(),
    );
    // The same image and settings (passwords through the API, never a command line), nothing else:
    // no volumes of the real one, no network.
    const made = await engineCall(docker, "create a throwaway database container", () =>
      docker.createContainer({
        Image: real.Config.Image,
        Env: real.Config.Env,
        ...(real.Config.Cmd ? { Cmd: real.Config.Cmd } : {}),
        ...(real.Config.Entrypoint ? { Entrypoint: real.Config.Entrypoint } : {}),
        ...(real.Config.User ? { User: real.Config.User } : {}),
        Labels: { "io.stowage.verify": workload.name },
        HostConfig: { NetworkMode: "none" },
      }),
    );
    try {
      await engineCall(docker, "start the throwaway database container", () => made.start());
      await waitForDatabase(docker, made.id, engine, options.databaseTimeoutMs ?? 120_000);
      const complaints = loadErrors(await loadDump(docker, made.id, engine, latest.id, file, options.restic));
      if (complaints.length > 0)
        throw new Error(`the dump does not load cleanly: ${complaints.slice(0, 5).join("; ")}`);
    } finally {
      await engineCall(docker, "remove the throwaway database container", () =>
        made.remove({ force: true, v: true }),
      ).catch(() => {});
    }
  });
}

/** The drill's results as a table for a person. */
export function formatVerify(results: readonly VerifyResult[]): string {
  if (results.length === 0) return "nothing to verify";
  return formatTable([
    ["workload", "what", "snapshot", "entries", "bytes", "status"],
    ...results.map((r) => [
      r.workload,
      r.what,
      r.snapshot || "-",
      r.files === undefined ? "-" : String(r.files),
      r.bytes === undefined ? "-" : String(r.bytes),
      r.status === "ok" ? "ok" : `FAILED: ${r.error}`,
    ]),
  ]);
}

/** verify's exit status: 0 every drill passed, 3 some failed, 1 all did. */
export function verifyStatus(results: readonly VerifyResult[]): 0 | 1 | 3 {
  return partialStatus(results.filter((r) => r.status === "failed").length, results.length);
}
