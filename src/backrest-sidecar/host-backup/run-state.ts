import type Docker from "dockerode";
import { ContainersLeftStoppedError, type LeftStopped, type StoppedContainer } from "../../system/docker.js";
import { exitCodeFor } from "../../system/errors.js";
import type { Logger } from "../../system/log.js";
import type { Workload } from "../workloads/discover.js";
import { stopOrder } from "../workloads/order.js";
import { partialStatus, type RunReport, type WorkloadReport } from "./report.js";
import { withContainersStoppedJournaled } from "./stop-journal.js";

/** One backup-once run's record: what it did per workload, and how long each container was down. */
export class RunState {
  readonly reports = new Map<Workload, WorkloadReport>();
  /** Reports of no one container (rcb's run). */
  readonly extra: WorkloadReport[] = [];
  readonly downtime: Array<{ container: string; seconds: number }> = [];
  readonly leftStopped: LeftStopped[] = [];
  private readonly stoppedAt = new Map<string, number>();
  private readonly started = new Date();

  constructor(readonly runId: string) {}

  report(workload: Workload, mode: WorkloadReport["mode"]): WorkloadReport {
    let entry = this.reports.get(workload);
    if (!entry) {
      entry = {
        workload: workload.name,
        mode,
        snapshots: [],
        files: 0,
        bytesAdded: 0,
        durationSeconds: 0,
        status: "ok",
      };
      this.reports.set(workload, entry);
    }
    if (entry.mode === "none" || (entry.mode === "dump" && mode !== "none")) entry.mode = mode;
    return entry;
  }

  fail(workload: Workload, error: string, mode: WorkloadReport["mode"] = "none"): void {
    const entry = this.report(workload, mode);
    entry.status = "failed";
    entry.error = entry.error ? `${entry.error}; ${error}` : error;
  }

  /**
   * Run `work` with these containers stopped (dependants first, started again in reverse), timing
   * each one's downtime from `docker stop` to running again. Containers that cannot be started
   * again are recorded (the run fails for them); the error of the work itself is rethrown.
   */
  async stopped(
    docker: Docker,
    containers: readonly Workload[],
    options: { timeoutSeconds: number; signal: AbortSignal; stateDir: string },
    log: Logger,
    work: () => Promise<void>,
  ): Promise<void> {
    const onStopping = (c: StoppedContainer) => {
      this.stoppedAt.set(c.id, Date.now());
      log.info({ action: "quiesce.stop", container: c.name }, "stopping for the backup");
    };
    const onStarted = (c: StoppedContainer) => {
      const seconds = (Date.now() - (this.stoppedAt.get(c.id) ?? Date.now())) / 1000;
      this.downtime.push({ container: c.name, seconds });
      log.info({ action: "quiesce.start", container: c.name, downtime_seconds: seconds }, "started again");
    };
    try {
      const { stateDir, ...stop } = options;
      await withContainersStoppedJournaled(
        docker,
        stateDir,
        stopOrder(containers),
        { ...stop, onStopping, onStarted },
        work,
      );
    } catch (error) {
      if (!(error instanceof ContainersLeftStoppedError)) throw error;
      for (const left of error.left) {
        this.leftStopped.push(left);
        log.error(
          { action: "quiesce.start-failed", container: left.container.name, err: left.reason },
          "could not start again",
        );
      }
      if (error.workError !== undefined) throw error.workError;
    }
  }

  /**
   * The run's report. Its status is the seed's: 0 all done, 3 some workloads failed, 1 all did (or
   * a container was left stopped); a run that ended by an error or a signal has that error's code.
   */
  finish(thrown: unknown): RunReport {
    const workloads = [...this.reports.values(), ...this.extra];
    for (const [workload, entry] of this.reports) {
      const own = this.downtime.filter((d) => d.container === workload.name);
      if (own.length > 0) entry.downtimeSeconds = own.reduce((sum, d) => sum + d.seconds, 0);
    }
    const failed = workloads.filter((w) => w.status === "failed").length;
    const status =
      thrown !== undefined
        ? exitCodeFor(thrown)
        : this.leftStopped.length > 0
          ? 1
          : partialStatus(failed, workloads.length);
    const finished = new Date();
    return {
      run: this.runId,
      started: this.started.toISOString(),
      finished: finished.toISOString(),
      durationSeconds: (finished.getTime() - this.started.getTime()) / 1000,
      status,
      workloads,
      downtime: this.downtime,
      leftStopped: this.leftStopped.map((l) => ({ container: l.container.name, reason: l.reason })),
    };
  }
}
