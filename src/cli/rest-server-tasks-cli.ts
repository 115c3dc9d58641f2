import path from "node:path";
import type { Command } from "commander";
import type { Comparison, Difference } from "../rest-server/mirror/compare.js";
import { openStorage } from "../rest-server/open-storage.js";
import { parseRepoPath } from "../rest-server/repo-path.js";
import type { ServerOptions } from "../rest-server/server.js";
import type { Storage } from "../rest-server/storage.js";
import { ConfigError } from "../system/errors.js";
import type { Logger } from "../system/log.js";
import { output } from "./output.js";

export interface TaskContext {
  /** The server's flags (storage, mirror), as for serving. */
  options(): ServerOptions;
  logger(): Logger;
  exit(code: number): void;
}

/** `--repo alice/laptop` as segments (checked as a request path would be). */
function repoFlag(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  const parsed = parseRepoPath(`/${text.replace(/^\/+|\/+$/g, "")}/`);
  if (!parsed.ok || parsed.target.kind !== "repo")
    throw new ConfigError(
      `--repo ${text}: not a repository path (${parsed.ok ? "names a type" : parsed.message})`,
    );
  return parsed.target.repo;
}

/** The server's storage the flags name (--path or --storage), checked. */
async function primaryStorage(options: ServerOptions, log: Logger): Promise<Storage> {
  const primary = await openStorage(
    {
      location: options.storage ?? options.path,
      flag: "--storage",
      s3Endpoint: options.s3Endpoint,
      groupAccessible: options.groupAccessibleRepos,
    },
    log,
  );
  await primary.prepare();
  return primary;
}

/** The primary storage and the mirror the flags name, both checked. */
async function bothStorages(context: TaskContext): Promise<{ primary: Storage; mirror: Storage }> {
  const options = context.options();
  const log = context.logger();
  if (!options.mirror) throw new ConfigError("--mirror is needed: the mirror to compare with the primary");
  const primary = await primaryStorage(options, log);
  const { mirrorStorage } = await import("../rest-server/mirror/start-mirror.js");
  const mirror = await mirrorStorage(options.mirror, options.groupAccessibleRepos, log);
  await mirror.prepare();
  return { primary, mirror };
}

function describe(difference: Difference): string {
  const where = `${difference.repo || "/"} ${difference.type}${difference.name ? ` ${difference.name}` : ""}`;
  const sizes =
    difference.primaryBytes !== undefined
      ? ` (primary ${difference.primaryBytes} bytes${difference.mirrorBytes !== undefined ? `, mirror ${difference.mirrorBytes}` : ""})`
      : "";
  return `${difference.problem}: ${where}${sizes}`;
}

/** `mirror-verify`, `mirror-resync` and `maintain`. */
export function addTasks(cli: Command, context: TaskContext): void {
  const { print, error } = output("rest-server");
  cli
    .command("mirror-verify")
    .description(
      "compare the mirror with the primary storage (names and sizes; with --read-data the SHA-256 each blob's name promises); non-zero naming what differs",
    )
    .option("--repo <path>", "only this repository (e.g. alice/laptop)")
    .option("--read-data", "read every blob on the mirror and check its content against its name")
    .action(async (flags: { repo?: string; readData?: boolean }) => {
      const repo = repoFlag(flags.repo);
      const { primary, mirror } = await bothStorages(context);
      const { compareMirror } = await import("../rest-server/mirror/compare.js");
      const result: Comparison = await compareMirror(primary, mirror, {
        ...(repo ? { repo } : {}),
        readData: Boolean(flags.readData),
      });
      for (const difference of result.differences) error(describe(difference));
      print(
        `${result.repos} repositories, ${result.objects} objects (${result.bytes} bytes) on the primary; ${result.differences.length} differ on the mirror ${mirror.location}${flags.readData ? `; ${result.read} blobs read and hashed` : ""}; ${result.onlyOnMirror} kept only by the mirror`,
      );
      context.exit(result.differences.length === 0 ? 0 : 1);
    });
  cli
    .command("mirror-resync")
    .description(
      "copy to the mirror whatever of the primary it lacks (for a mirror added to a server with repositories), in the order that keeps it a valid repository",
    )
    .option("--repo <path>", "only this repository (e.g. alice/laptop)")
    .action(async (flags: { repo?: string }) => {
      const repo = repoFlag(flags.repo);
      const { primary, mirror } = await bothStorages(context);
      const { resyncMirror } = await import("../rest-server/mirror/compare.js");
      const result = await resyncMirror(primary, mirror, repo ? { repo } : {});
      for (const difference of result.left) error(`${describe(difference)}: left as it is`);
      print(
        `${result.repos} repositories: ${result.copied} objects (${result.bytes} bytes) copied to ${mirror.location}; ${result.left.length} differ and were left as they are`,
      );
      context.exit(result.left.length === 0 ? 0 : 1);
    });
  cli
    .command("maintain")
    .description(
      "forget and prune append-only repositories as the maintain file says, through the server as its maintenance user; refuses when check fails, never forgets snapshots younger than the minimum age, never more than the allowed share without --force; prints a JSON report, non-zero when anything was refused or failed",
    )
    .requiredOption("--config <file>", "the maintain file (YAML): server, user, password-file, repos")
    .option("--repo <path>", "only this repository (an entry of the file must name it)")
    .option(
      "--force",
      "forget even more than the allowed share, or despite snapshots that claim a future time",
    )
    .option("--dry-run", "check and plan only: report what would be forgotten")
    .action(async (flags: { config: string; repo?: string; force?: boolean; dryRun?: boolean }) => {
      const only = repoFlag(flags.repo);
      const options = context.options();
      const log = context.logger();
      const { loadMaintainConfig } = await import("../rest-server/maintain/config.js");
      const { runMaintenance, needsAttention } = await import("../rest-server/maintain/run-maintenance.js");
      const config = await loadMaintainConfig(path.resolve(flags.config));
      if (!config.server)
        throw new ConfigError(
          `${flags.config}: 'server' must name the rest-server to go through (http://host:port)`,
        );
      const reports = await runMaintenance({
        config,
        storage: await primaryStorage(options, log),
        server: config.server,
        reportDir: config.reportDir ?? path.join(options.path, ".maintain-reports"),
        force: Boolean(flags.force),
        dryRun: Boolean(flags.dryRun),
        ...(only ? { only } : {}),
        log,
      });
      print(JSON.stringify(reports, null, 2));
      for (const report of reports)
        if (report.outcome === "refused" || report.outcome === "failed")
          error(`maintain ${report.repo || "/"}: ${report.outcome}: ${report.reason ?? ""}`);
      context.exit(needsAttention(reports) ? 1 : 0);
    });
}
