import { readFile } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../../system/atomic-write.js";
import type { Logger } from "../../system/log.js";
import type { Storage } from "../storage.js";
import type { MaintainConfig, RepoPolicy } from "./config.js";
import { runMaintenance } from "./run-maintenance.js";

const TICK_MS = 1_000;
/** A schedule that never ran starts this long after the server (or its own interval, if shorter). */
const FIRST_RUN_MS = 60_000;
const STATE_FILE = "schedule.json";

export interface MaintenanceSchedule {
  /** Stop: a run under way is interrupted (restic gets SIGINT and removes its lock). */
  close(): Promise<void>;
}

/**
 * `--maintain FILE`: each entry of the file on its own schedule, one run at a time, through this
 * server. When each entry last ran is kept in the report folder, so a restart does not run
 * everything again at once (or never, for a server restarted more often than its schedule).
 */
export async function startMaintenanceSchedule(options: {
  config: MaintainConfig;
  storage: Storage;
  server: string;
  reportDir: string;
  log: Logger;
}): Promise<MaintenanceSchedule> {
  const stateFile = path.join(options.reportDir, STATE_FILE);
  const last: Record<string, number> = await readFile(stateFile, "utf8")
    .then((text) => JSON.parse(text) as Record<string, number>)
    .catch(() => ({}));
  const started = Date.now();
  const dueAt = (policy: RepoPolicy) => {
    const ran = last[policy.pattern];
    return ran === undefined ? started + Math.min(policy.scheduleMs, FIRST_RUN_MS) : ran + policy.scheduleMs;
  };
  const abort = new AbortController();
  let running: Promise<void> | undefined;

  const tick = () => {
    if (running || abort.signal.aborted) return;
    const now = Date.now();
    const due = options.config.repos.filter((policy) => dueAt(policy) <= now);
    if (due.length === 0) return;
    running = (async () => {
      try {
        await runMaintenance({
          config: options.config,
          storage: options.storage,
          server: options.server,
          reportDir: options.reportDir,
          force: false,
          dryRun: false,
          policies: due,
          signal: abort.signal,
          log: options.log,
        });
      } catch (error) {
        if (!abort.signal.aborted)
          options.log.error(
            { action: "maintain.failed", err: (error as Error).message },
            "maintain run failed",
          );
      }
      if (abort.signal.aborted) return;
      for (const policy of due) last[policy.pattern] = now;
      await writeFileAtomic(stateFile, JSON.stringify(last), { mode: 0o600 }).catch(() => {});
    })().finally(() => {
      running = undefined;
    });
  };
  const timer = setInterval(tick, TICK_MS);
  timer.unref();
  options.log.info(
    {
      action: "maintain.schedule",
      entries: options.config.repos.map((policy) => ({
        repo: policy.pattern,
        next: new Date(dueAt(policy)).toISOString(),
      })),
    },
    "maintenance scheduled",
  );
  return {
    async close() {
      clearInterval(timer);
      abort.abort(new Error("the server is stopping"));
      await running;
    },
  };
}
