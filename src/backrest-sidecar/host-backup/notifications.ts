import type { Logger } from "../../system/log.js";
import type { Workload } from "../workloads/discover.js";
import { backedUp, dumped } from "../workloads/layout.js";
import { httpEndpoint, redactUrl } from "../workloads/notify.js";
import { type SettingsDefaults, type WorkloadSettings, workloadSettings } from "../workloads/settings.js";
import type { RunReport } from "./report.js";

const TIMEOUT_MS = 15_000;

/** Where one workload's run is told of: its labels' (or its repository's) notify and healthchecks URLs. */
export interface WorkloadTargets {
  workload: Workload;
  notify: readonly string[];
  healthchecks: string | undefined;
}

export function targetsOf(workload: Workload, settings: WorkloadSettings): WorkloadTargets {
  return { workload, notify: settings.notify, healthchecks: settings.healthchecks };
}

/**
 * One request; a failure is a warning and never changes the run's status. Credentials in the URL
 * go in an Authorization header (as shoutrrr's generic service sends them); no message names them.
 */
async function send(url: string, body: string | undefined, what: string, log: Logger): Promise<void> {
  const target = new URL(url);
  const user = decodeURIComponent(target.username);
  const password = decodeURIComponent(target.password);
  target.username = "";
  target.password = "";
  const headers: Record<string, string> = {
    ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
    ...(user || password
      ? { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` }
      : {}),
  };
  try {
    const response = await fetch(target, {
      method: "POST",
      headers,
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    log.info({ action: "notify", what, url: redactUrl(url) }, "notification sent");
  } catch (error) {
    // Not the error's own message: fetch's can quote the URL.
    const message = (error as Error).message;
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    const err = message.startsWith("HTTP ") ? message : (cause ?? (error as Error).name);
    log.warn({ action: "notify.failed", what, url: redactUrl(url), err }, "cannot send a notification");
  }
}

/** POST the run's JSON report to each `--notify-url`. */
export async function notify(urls: readonly string[], report: RunReport, log: Logger): Promise<void> {
  for (const url of urls) await send(url, JSON.stringify(report), "report", log);
}

/** healthchecks.io's start ping of each workload about to be backed up. */
export async function pingStart(targets: readonly WorkloadTargets[], log: Logger): Promise<void> {
  for (const { healthchecks } of targets)
    if (healthchecks)
      await send(`${healthchecks.replace(/\/+$/, "")}/start`, undefined, "healthchecks start", log);
}

/**
 * Each workload's end of run, as its Backrest plan's hooks tell it: healthchecks gets the success
 * ping or `/fail`; a notify URL with an http(s) endpoint gets the JSON report of that workload.
 * A shoutrrr service only shoutrrr speaks (discord://, telegram://, ...) is named in a warning:
 * Backrest's plan sends to it, backup-once cannot.
 */
export async function notifyWorkloads(
  targets: readonly WorkloadTargets[],
  report: RunReport,
  log: Logger,
): Promise<void> {
  for (const target of targets) {
    const name = target.workload.name;
    const own = report.workloads.filter((w) => w.workload === name);
    // A run that ended before reaching the workload (a signal, an error) failed it too.
    const ok =
      own.length > 0 &&
      own.every((w) => w.status === "ok") &&
      !report.leftStopped.some((left) => left.container === name);
    if (target.healthchecks) {
      const base = target.healthchecks.replace(/\/+$/, "");
      await send(
        ok ? base : `${base}/fail`,
        undefined,
        ok ? "healthchecks success" : "healthchecks fail",
        log,
      );
    }
    for (const url of target.notify) {
      const endpoint = httpEndpoint(url);
      if (endpoint === undefined) {
        log.warn(
          { action: "notify.unsupported", container: name, url: redactUrl(url) },
          "backup-once sends reports to http(s) endpoints only; Backrest's plan sends to this one",
        );
        continue;
      }
      await send(endpoint, JSON.stringify({ ...report, workloads: own }), "report", log);
    }
  }
}

/**
 * The notification targets of the workloads the native engine backs up or dumps (their labels',
 * else their repository's defaults); a target that is not a URL is a warning, not a failed run.
 */
export function notificationTargets(
  workloads: readonly Workload[],
  options: { settings: SettingsDefaults; excludeBindMounts: boolean },
  log: Logger,
): WorkloadTargets[] {
  const saved = new Set([...backedUp(workloads, options), ...dumped(workloads)]);
  return [...saved].flatMap((workload) => {
    const settings = workloadSettings(workload, options.settings);
    for (const problem of settings.problems)
      log.warn({ action: "notify.invalid", container: workload.name }, problem);
    const targets = targetsOf(workload, settings);
    return targets.notify.length > 0 || targets.healthchecks ? [targets] : [];
  });
}
