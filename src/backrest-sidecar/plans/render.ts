import { shellQuote } from "../../system/shell-quote.js";
import { canonical } from "../backrest/canonical.js";
import type { Json } from "../backrest/store.js";
import { HOOK_HOST, type HookAction, hookPath } from "../workloads/hook-routes.js";
import { parseKeep } from "../workloads/keep.js";
import { shoutrrrUrl } from "../workloads/notify.js";
import type { SidecarPlan } from "./build.js";

/** The plan fields the sidecar owns in Backrest's own config; any other field of a plan is kept. */
export const MANAGED_KEYS = [
  "id",
  "repo",
  "paths",
  "excludes",
  "schedule",
  "retention",
  "hooks",
  "backup_flags",
] as const;

/**
 * Marks the hooks we write (a Go template comment: Backrest renders commands and notification
 * templates through text/template, so it renders to nothing). Hooks a person added to one of our
 * plans in Backrest's UI carry no mark and are kept.
 */
export const HOOK_MARK = "{{/* backrest-sidecar */}}";

/** Backrest's default notification text, marked. */
const NOTIFY_TEMPLATE = `${HOOK_MARK}{{ .Summary }}`;

const NOTIFY_CONDITIONS = [
  "CONDITION_SNAPSHOT_START",
  "CONDITION_SNAPSHOT_SUCCESS",
  "CONDITION_SNAPSHOT_ERROR",
];

/**
 * Backrest's retention from a keep spec. `last` alone -> policyKeepLastN; buckets (with `last` as
 * keepLastN) -> policyTimeBucketed; every count `unlimited` -> policyKeepAll. A spec Backrest
 * cannot express (`within*`, or `unlimited` beside finite counts) becomes policyKeepAll with a
 * warning: Backrest then forgets nothing the spec keeps (backup-once's own forget applies the
 * whole spec), rather than forget what the label asked to keep.
 */
export function backrestRetention(spec: string, warn: (message: string) => void): Json | undefined {
  const keep = parseKeep(spec);
  // Keeping every last snapshot keeps them all, whatever else the spec says.
  if (keep.counts.last === "unlimited") return { policyKeepAll: true };
  const counts = Object.entries(keep.counts);
  const unlimited = counts.filter(([, value]) => value === "unlimited").map(([key]) => key);
  const inexpressible = [
    ...Object.keys(keep.durations).map(
      (key) => `${key}=${keep.durations[key as keyof typeof keep.durations]}`,
    ),
    ...(unlimited.length < counts.length ? unlimited.map((key) => `${key}=unlimited`) : []),
  ];
  if (inexpressible.length > 0) {
    warn(
      `keep ${inexpressible.join(", ")} has no Backrest retention equivalent; the plan keeps every snapshot (policyKeepAll) so that Backrest forgets nothing the spec keeps`,
    );
    return { policyKeepAll: true };
  }
  if (counts.length > 0 && unlimited.length === counts.length) return { policyKeepAll: true };
  // Zero counts are left out, as Backrest writes them (protojson drops zero values): the plan
  // then reads back from Backrest's own rewrite exactly as we wrote it.
  const finite = new Map(counts.filter(([, value]) => value !== 0) as Array<[string, number]>);
  const buckets = ["hourly", "daily", "weekly", "monthly", "yearly"].filter((key) => finite.has(key));
  const last = finite.get("last");
  if (buckets.length === 0) return last === undefined ? undefined : { policyKeepLastN: last };
  const policy: Json = Object.fromEntries(buckets.map((key) => [key, finite.get(key)]));
  if (last !== undefined) policy.keepLastN = last;
  return { policyTimeBucketed: policy };
}

/** The sidecar's endpoint as a hook calls it: curl over its Unix socket (in Backrest's Alpine image). */
function endpointCall(socket: string, planId: string, action: HookAction, curlFlags: string): string {
  return `curl ${curlFlags} --unix-socket ${shellQuote(socket)} -X POST ${shellQuote(`http://${HOOK_HOST}${hookPath(planId, action)}`)}`;
}

/**
 * A snapshot plan's own hooks: prepare on start (fatal: no snapshot, no backup), finish on end
 * and on error (a fatal start hook fires no end). Both fail Backrest's operation when they fail.
 */
function sessionHooks(plan: SidecarPlan, mark: string): { start: Json[]; end: Json[] } {
  if (plan.mode !== "snapshot" || !plan.socket) return { start: [], end: [] };
  const call = (action: HookAction) =>
    `${endpointCall(plan.socket as string, plan.id, action, "--fail-with-body -sS")}${mark}`;
  return {
    start: [
      {
        conditions: ["CONDITION_SNAPSHOT_START"],
        actionCommand: { command: call("prepare") },
        onError: "ON_ERROR_FATAL",
      },
    ],
    end: [
      {
        conditions: ["CONDITION_SNAPSHOT_END", "CONDITION_SNAPSHOT_ERROR"],
        actionCommand: { command: call("finish") },
        onError: "ON_ERROR_FATAL",
      },
    ],
  };
}

/**
 * A dump plan's source: `restic backup --stdin-from-command` running curl, which streams the
 * dump from the sidecar; a dump that fails makes curl (and so restic, and Backrest's operation)
 * fail, its reason on stderr. Kept after any flags of the plan's own (they must precede `--`).
 */
export function dumpFlags(plan: SidecarPlan): string[] {
  if (plan.mode !== "dump" || !plan.socket || !plan.dumpFile) return [];
  const call = endpointCall(
    plan.socket,
    plan.id,
    "dump",
    `-fsS -w ${shellQuote("%{stderr}%header{x-stowage-error}")}`,
  );
  return ["--stdin-from-command", "--stdin-filename", plan.dumpFile, `-- ${call}`];
}

/** The hooks our labels (and the plan's mode) make, each marked as ours. */
export function planHooks(plan: SidecarPlan): Json[] {
  const mark = `\n${HOOK_MARK}`;
  const session = sessionHooks(plan, mark);
  return [
    ...session.start,
    ...(plan.hooks?.pre ?? []).map((command) => ({
      conditions: ["CONDITION_SNAPSHOT_START"],
      actionCommand: { command: `${command}${mark}` },
      onError: "ON_ERROR_FATAL",
    })),
    // Also on ERROR: when a start hook fails fatally, Backrest fires ERROR but never END, and a
    // container a pre hook stopped would stay stopped. (After a failed backup both fire.)
    ...(plan.hooks?.post ?? []).map((command) => ({
      conditions: ["CONDITION_SNAPSHOT_END", "CONDITION_SNAPSHOT_ERROR"],
      actionCommand: { command: `${command}${mark}` },
    })),
    ...session.end,
    ...(plan.notify ?? []).map((url) => ({
      conditions: NOTIFY_CONDITIONS,
      actionShoutrrr: { shoutrrrUrl: shoutrrrUrl(url), template: NOTIFY_TEMPLATE },
    })),
    ...(plan.healthchecks
      ? [
          {
            conditions: NOTIFY_CONDITIONS,
            actionHealthchecks: { webhookUrl: plan.healthchecks, template: NOTIFY_TEMPLATE },
          },
        ]
      : []),
  ];
}

/** Our hooks as sidecars before marks wrote them (pre and post commands only), to replace them. */
function legacyHooks(plan: SidecarPlan): Json[] {
  return [
    ...(plan.hooks?.pre ?? []).map((command) => ({
      conditions: ["CONDITION_SNAPSHOT_START"],
      actionCommand: { command },
      onError: "ON_ERROR_FATAL",
    })),
    ...(plan.hooks?.post ?? []).map((command) => ({
      conditions: ["CONDITION_SNAPSHOT_END"],
      actionCommand: { command },
    })),
  ];
}

/**
 * Whether an existing hook is ours: it carries our mark, or (written before hooks were marked) it
 * is one of the hooks we would write now, unmarked.
 */
function ours(hook: unknown, legacy: ReadonlySet<string>): boolean {
  if (typeof hook !== "object" || hook === null) return false;
  return JSON.stringify(hook).includes(HOOK_MARK) || legacy.has(canonical(hook));
}

/** Our plan in Backrest's protojson shape, over the existing plan (unmanaged fields and others' hooks kept). */
export function toBackrestPlan(
  plan: SidecarPlan,
  existing: Json | undefined,
  warn: (message: string) => void,
): Json {
  const kept: Json = {};
  for (const [key, value] of Object.entries(existing ?? {})) {
    if (!(MANAGED_KEYS as readonly string[]).includes(key)) kept[key] = value;
  }
  const generated = planHooks(plan);
  const legacy = new Set(legacyHooks(plan).map((hook) => canonical(hook)));
  const others = (Array.isArray(existing?.hooks) ? (existing.hooks as unknown[]) : []).filter(
    (hook) => !ours(hook, legacy),
  ) as Json[];
  const hooks = [...generated, ...others];
  const retention = plan.retention ? backrestRetention(plan.retention.spec, warn) : undefined;
  // The plan's own backup flags (set in the UI) are kept, ours (a dump's source) follow them.
  const flags = Array.isArray(existing?.backup_flags) ? (existing.backup_flags as string[]) : [];
  const ownStart = flags.indexOf("--stdin-from-command");
  const backupFlags = [...(ownStart < 0 ? flags : flags.slice(0, ownStart)), ...dumpFlags(plan)];
  return {
    id: plan.id,
    repo: plan.repo,
    ...(plan.sources.length > 0 ? { paths: plan.sources } : {}),
    ...(plan.exclude ? { excludes: plan.exclude } : {}),
    schedule: { cron: plan.schedule, clock: "CLOCK_LOCAL" },
    ...(retention ? { retention } : {}),
    ...(hooks.length > 0 ? { hooks } : {}),
    ...kept,
    ...(backupFlags.length > 0 ? { backup_flags: backupFlags } : {}),
  };
}
