import { describe, expect, it } from "vitest";
import { backrestCron, CRON_MACROS } from "../../../src/backrest-sidecar/backrest/cron.js";
import { configProblems, idProblem, planProblems } from "../../../src/backrest-sidecar/backrest/rules.js";
import type { LoadedConfig } from "../../../src/backrest-sidecar/backrest/store.js";
import { buildPlans, type PlanOptions } from "../../../src/backrest-sidecar/plans/build.js";
import { foreignProblems, mergePlans } from "../../../src/backrest-sidecar/plans/merge.js";
import { backrestRetention, toBackrestPlan } from "../../../src/backrest-sidecar/plans/render.js";
import type { Workload } from "../../../src/backrest-sidecar/workloads/discover.js";
import { parseKeep } from "../../../src/backrest-sidecar/workloads/keep.js";

/** A fixed "now" for the look-ahead: Monday 2026-12-07 12:00 UTC. */
const NOW = new Date(Date.UTC(2026, 11, 7, 12));

describe("schedules as Backrest v1.14.1 takes them", () => {
  it("translates every macro with an exact equivalent, and says so", () => {
    expect(CRON_MACROS).toEqual({
      "@yearly": "0 0 1 1 *",
      "@annually": "0 0 1 1 *",
      "@monthly": "0 0 1 * *",
      "@weekly": "0 0 * * 0",
      "@daily": "0 0 * * *",
      "@midnight": "0 0 * * *",
      "@hourly": "0 * * * *",
    });
    for (const [macro, cron] of Object.entries(CRON_MACROS)) {
      const schedule = backrestCron(macro, NOW);
      expect(schedule.cron).toBe(cron);
      expect(schedule.translated).toBe(`${macro} is written as '${cron}'`);
    }
    expect(backrestCron("@DAILY", NOW).cron).toBe("0 0 * * *");
  });

  it("refuses @reboot, which has no equivalent", () => {
    expect(() => backrestCron("@reboot", NOW)).toThrow("'@reboot' has no five-field equivalent");
  });

  it("writes day of week 7 as 0, in ranges and lists too", () => {
    expect(backrestCron("0 2 * * 7", NOW).cron).toBe("0 2 * * 0");
    expect(backrestCron("0 2 * * 5-7", NOW).cron).toBe("0 2 * * 0,5-6");
    expect(backrestCron("0 2 * * 1,7", NOW).cron).toBe("0 2 * * 0-1");
    expect(backrestCron("0 2 * * 0-7", NOW).cron).toBe("0 2 * * *");
    expect(backrestCron("0 2 * * 1-7/2", NOW).cron).toBe("0 2 * * 0-1,3,5");
    expect(backrestCron("0 2 * * 7", NOW).translated).toContain("day of week 7 (Sunday) is written as 0");
    // A 7 that is a step, not a day, is left as it is.
    expect(backrestCron("0 2 * * */7", NOW)).toEqual({ cron: "0 2 * * */7" });
  });

  it("refuses a date that never comes, accepts one that comes rarely", () => {
    expect(() => backrestCron("0 2 31 2 *", NOW)).toThrow("never runs");
    expect(() => backrestCron("0 2 30 2 *", NOW)).toThrow("never runs");
    expect(() => backrestCron("0 2 31 4,6,9,11 *", NOW)).toThrow("never runs");
    expect(backrestCron("0 2 29 2 *", NOW).cron).toBe("0 2 29 2 *");
    // Backrest's parser needs day of month AND day of week to match: Friday the 13th comes.
    expect(backrestCron("0 2 13 * 5", NOW)).toEqual({ cron: "0 2 13 * 5", bothDays: true });
  });

  it("keeps what Backrest takes as it is: names, steps, lists, N/S", () => {
    for (const cron of [
      "0 2 * * *",
      "*/5 * * * 1-5",
      "0 0 1 jan,jul *",
      "0 2 * * SUN",
      "0 2 * * mon-fri",
      "0 2 1/2 * *",
      "15 3 * * *",
    ])
      expect(backrestCron(cron, NOW)).toEqual({ cron });
    expect(backrestCron("  0   2 * * *  ", NOW).cron).toBe("0 2 * * *");
  });

  it("refuses what Backrest's parser refuses or what never means anything", () => {
    expect(() => backrestCron("0 2 * *", NOW)).toThrow("needs 5 fields");
    expect(() => backrestCron("0 2 * * * *", NOW)).toThrow("needs 5 fields");
    expect(() => backrestCron("61 2 * * *", NOW)).toThrow("minute '61' is out of range 0-59");
    expect(() => backrestCron("0 24 * * *", NOW)).toThrow("hour '24' is out of range 0-23");
    expect(() => backrestCron("0 5-2 * * *", NOW)).toThrow("runs backwards");
    // A step of 0 would make Backrest's parser loop forever.
    expect(() => backrestCron("*/0 * * * *", NOW)).toThrow("step '0' must be a whole number of at least 1");
    expect(() => backrestCron("0 2 ? * *", NOW)).toThrow("day of month '?' is out of range");
    expect(() => backrestCron("0 2 * * 8", NOW)).toThrow("day of week '8' is out of range 0-7");
    expect(() => backrestCron("0 2 1,,2 * *", NOW)).toThrow("empty list item");
  });
});

describe("keep specs Backrest refuses", () => {
  it("a spec that keeps nothing is an error; zero buckets are left out of Backrest's policy", () => {
    expect(() => parseKeep("daily=0")).toThrow("keeps nothing");
    expect(() => parseKeep("last=0,weekly=0")).toThrow("keeps nothing");
    expect(() => parseKeep("daily=0,within=90d")).not.toThrow();
    expect(backrestRetention("daily=0,weekly=4", () => {})).toEqual({ policyTimeBucketed: { weekly: 4 } });
    expect(backrestRetention("last=0,daily=3", () => {})).toEqual({ policyTimeBucketed: { daily: 3 } });
    expect(backrestRetention("last=5", () => {})).toEqual({ policyKeepLastN: 5 });
  });
});

describe("ids", () => {
  it("empty and _reserved_ ids are refused; instance ids up to 50 characters", () => {
    expect(idProblem("")).toBe("must not be empty");
    expect(idProblem("_x_")).toContain("Backrest reserves");
    expect(idProblem("_x")).toBeUndefined();
    expect(idProblem("x_")).toBeUndefined();
    expect(idProblem("a".repeat(51), 50)).toContain("longer than 50");
    expect(idProblem("a".repeat(500))).toBeUndefined();
  });
});

const REPOS = new Set(["default"]);
const plan = (extra: Record<string, unknown> = {}) => ({
  id: "p1",
  repo: "default",
  paths: ["/data"],
  schedule: { cron: "0 2 * * *", clock: "CLOCK_LOCAL" },
  ...extra,
});

describe("plans and whole configs as Backrest validates them", () => {
  it("a plan: id, repo, paths, schedule, retention", () => {
    expect(planProblems(plan(), REPOS)).toEqual([]);
    expect(planProblems(plan({ id: "_p_" }), REPOS)).toEqual([
      "plan _p_: id starts and ends with '_', which Backrest reserves for itself",
    ]);
    expect(planProblems(plan({ repo: "nope" }), REPOS)).toEqual([
      "plan p1: repo 'nope' is not in the config",
    ]);
    expect(planProblems(plan({ paths: [] }), REPOS)).toEqual(["plan p1: needs at least one path"]);
    expect(planProblems(plan({ paths: [], backup_flags: ["--files-from=x"] }), REPOS)).toEqual([]);
    expect(planProblems(plan({ paths: ["/a", ""] }), REPOS)).toEqual(["plan p1: has an empty path"]);
    expect(planProblems(plan({ schedule: { cron: "@daily" } }), REPOS)[0]).toContain(
      "Backrest does not take it as written",
    );
    expect(planProblems(plan({ schedule: { cron: "0 2 * * 7" } }), REPOS)[0]).toContain("day of week 7");
    expect(planProblems(plan({ schedule: { maxFrequencyDays: 0 } }), REPOS)[0]).toContain(
      "must be at least 1",
    );
    expect(planProblems(plan({ schedule: { disabled: false } }), REPOS)[0]).toContain("must be true");
    expect(planProblems(plan({ retention: { policyTimeBucketed: { daily: 0 } } }), REPOS)[0]).toContain(
      "keeps nothing",
    );
    expect(
      planProblems(plan({ retention: { policyKeepLastN: 3, policyKeepAll: true } }), REPOS)[0],
    ).toContain("exactly one policy");
    expect(planProblems(plan({ paths: "/data" }), REPOS)[0]).toContain("must be a list of strings");
  });

  it("a whole config: version, instance, auth, repos (guid or autoInitialize, env as KEY=VALUE), duplicates", () => {
    const repo = { id: "default", uri: "/r", guid: "a".repeat(64) };
    const good = { version: 6, instance: "host", repos: [repo], plans: [plan()] };
    expect(configProblems(good)).toEqual([]);
    expect(configProblems({ ...good, version: undefined })).toContain(
      "version: missing or 0 ('config version 0 is invalid')",
    );
    expect(configProblems({ ...good, version: 1 })).toContain("version 1 is too old for Backrest to migrate");
    expect(configProblems({ ...good, version: 3 })).toEqual([]);
    expect(configProblems({ ...good, instance: "_h_" })[0]).toContain("instance id starts and ends");
    expect(configProblems({ ...good, auth: { users: [] } })).toEqual(["auth: enabled but no users"]);
    expect(configProblems({ ...good, auth: { disabled: true } })).toEqual([]);
    expect(configProblems({ ...good, repos: [{ id: "default", uri: "/r" }] })[0]).toContain(
      "needs a guid (64 hex) or autoInitialize",
    );
    expect(configProblems({ ...good, repos: [{ ...repo, autoInitialize: true }] })[0]).toContain(
      "a guid and autoInitialize",
    );
    expect(configProblems({ ...good, repos: [{ ...repo, env: ["NOEQUALS"] }] })[0]).toContain(
      "is not KEY=VALUE",
    );
    // The seed's object-shaped env is a wrong JSON type for Backrest: fatal there.
    expect(configProblems({ ...good, repos: [{ ...repo, env: { K: "v" } }] })[0]).toContain(
      "env must be a list",
    );
    expect(configProblems({ ...good, plans: [plan(), plan()] })).toContain("plan p1: duplicate id");
  });

  const backrestConfig = (plans: unknown[]): LoadedConfig => ({
    format: "backrest",
    exists: true,
    data: { version: 6, repos: [{ id: "default", uri: "/r", guid: "a".repeat(64) }], plans },
  });

  it("a broken config of someone else's is left alone; our own broken plans are not held against it", () => {
    expect(
      foreignProblems(backrestConfig([plan({ id: "ui", schedule: { cron: "@daily" } })]), "sc_"),
    ).toHaveLength(1);
    expect(
      foreignProblems(backrestConfig([plan({ id: "sc_old", schedule: { cron: "@daily" } })]), "sc_"),
    ).toEqual([]);
  });

  it("a plan Backrest would refuse is not written; the existing one stays", () => {
    const existing = plan({ id: "_x_", paths: ["/old"] });
    const config = backrestConfig([existing]);
    const merged = mergePlans(
      config,
      new Map([["_x_", { id: "_x_", repo: "default", schedule: "0 2 * * *", sources: ["/new"] }]]),
      { prefix: "_", untouched: new Set(), keepOrphans: false, warn: () => {} },
    );
    expect(merged.refused).toEqual([
      {
        planId: "_x_",
        message: expect.stringContaining("starts and ends with '_', which Backrest reserves"),
      },
    ]);
    expect(merged.data.plans).toEqual([existing]);
  });
});

describe("labels through to plans", () => {
  const options: PlanOptions = {
    prefix: "backrest_sidecar_",
    includeProject: false,
    excludeBindMounts: false,
    volumePrefix: "/var/lib/docker/volumes",
    defaultRepo: undefined,
    defaultSchedule: "0 2 * * *",
    defaultRetention: "daily=7,weekly=4",
    repos: ["default"],
    volumesRoot: "/volumes",
  };
  const workload = (name: string, labels: Record<string, string>): Workload => ({
    id: name,
    name,
    running: true,
    labels: { "backrest.enable": "true", ...labels },
    mounts: [{ type: "bind", source: `/srv/${name}`, destination: "/data" }],
  });

  it("translations are warnings naming the label; refusals are errors naming container, label and rule", () => {
    const set = buildPlans(
      [
        workload("daily", { "backrest.schedule": "@daily" }),
        workload("sunday", { "backrest.schedule": "0 2 * * 7" }),
        workload("reboot", { "backrest.schedule": "@reboot" }),
        workload("never", { "backrest.schedule": "0 2 31 2 *" }),
        workload("nothing", { "backrest.keep": "daily=0" }),
      ],
      options,
    );
    expect(set.plans.get("backrest_sidecar_daily")?.plan.schedule).toBe("0 0 * * *");
    expect(set.plans.get("backrest_sidecar_sunday")?.plan.schedule).toBe("0 2 * * 0");
    expect(set.warnings.map((w) => w.message)).toEqual([
      "backrest.schedule: @daily is written as '0 0 * * *'",
      "backrest.schedule: day of week 7 (Sunday) is written as 0: '0 2 * * 0'",
    ]);
    const errors = Object.fromEntries(set.errors.map((e) => [e.planId, e.message]));
    expect(errors.backrest_sidecar_reboot).toMatch(
      /^label backrest.schedule=@reboot on container reboot: '@reboot' has no five-field equivalent/,
    );
    expect(errors.backrest_sidecar_never).toMatch(
      /^label backrest.schedule=0 2 31 2 \* on container never: .* never runs/,
    );
    expect(errors.backrest_sidecar_nothing).toMatch(
      /^label backrest.keep=daily=0 on container nothing: keeps nothing/,
    );
  });

  it("renders a translated schedule into Backrest's shape exactly as Backrest takes it", () => {
    const set = buildPlans([workload("daily", { "backrest.schedule": "@weekly" })], options);
    const entry = set.plans.get("backrest_sidecar_daily");
    const rendered = toBackrestPlan(entry?.plan as never, undefined, () => {});
    expect(rendered.schedule).toEqual({ cron: "0 0 * * 0", clock: "CLOCK_LOCAL" });
    expect(planProblems(rendered, new Set(["default"]))).toEqual([]);
  });
});
