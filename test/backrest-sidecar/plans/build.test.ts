import { describe, expect, it } from "vitest";
import { canonical } from "../../../src/backrest-sidecar/backrest/canonical.js";
import { checkCron } from "../../../src/backrest-sidecar/backrest/cron.js";
import { detectFormat } from "../../../src/backrest-sidecar/backrest/file-store.js";
import {
  buildPlans,
  hostPathOf,
  type PlanOptions,
  type SidecarPlan,
} from "../../../src/backrest-sidecar/plans/build.js";
import { mergePlans } from "../../../src/backrest-sidecar/plans/merge.js";
import { backrestRetention, toBackrestPlan } from "../../../src/backrest-sidecar/plans/render.js";
import type { Workload } from "../../../src/backrest-sidecar/workloads/discover.js";
import { forgetFlags, parseKeep } from "../../../src/backrest-sidecar/workloads/keep.js";
import { splitCsv } from "../../../src/backrest-sidecar/workloads/labels.js";
import { planId, sanitizeId } from "../../../src/backrest-sidecar/workloads/plan-id.js";
import { DB_LABELS } from "../seed-labels.js";

const OPTIONS: PlanOptions = {
  prefix: "backrest_sidecar_",
  includeProject: false,
  excludeBindMounts: false,
  volumePrefix: "/var/lib/docker/volumes",
  defaultRepo: undefined,
  defaultSchedule: "0 2 * * *",
  defaultRetention: "daily=7,weekly=4",
  repos: ["default", "offsite"],
  volumesRoot: "/volumes",
};

/** The seed's `db` service. */
const db = (extra: Partial<Workload> = {}, labels: Record<string, string> = {}): Workload => ({
  id: "abc",
  name: "stack-db-1",
  running: true,
  labels: { ...DB_LABELS, "com.docker.compose.project": "stack", ...labels },
  mounts: [
    {
      type: "volume",
      name: "stack_pgdata",
      source: "/var/lib/docker/volumes/stack_pgdata/_data",
      destination: "/var/lib/postgresql/data",
    },
  ],
  ...extra,
});

describe("labels, keep specs, ids, cron", () => {
  it("splits CSV outside quotes", () => {
    expect(splitCsv("/data, /config ,")).toEqual(["/data", "/config"]);
    expect(splitCsv("sh -c 'a, b',echo \"x,y\"")).toEqual(["sh -c 'a, b'", 'echo "x,y"']);
    expect(splitCsv(undefined)).toEqual([]);
  });

  it("translates every keep key and refuses bad ones", () => {
    const spec = parseKeep(
      "last=7,daily=7,weekly=4,monthly=12,yearly=unlimited,within=90d,within-daily=1y5m7d2h",
    );
    expect(forgetFlags(spec)).toEqual([
      "--keep-last",
      "7",
      "--keep-daily",
      "7",
      "--keep-weekly",
      "4",
      "--keep-monthly",
      "12",
      "--keep-yearly",
      "unlimited",
      "--keep-within",
      "90d",
      "--keep-within-daily",
      "1y5m7d2h",
    ]);
    expect(() => parseKeep("daily=x")).toThrow("daily=x: expected a whole number");
    expect(() => parseKeep("within=2w")).toThrow("within=2w: expected a duration");
    expect(() => parseKeep("fortnightly=1")).toThrow("unknown key 'fortnightly'");
    expect(() => parseKeep("")).toThrow("empty");
    expect(() => parseKeep("daily=1,daily=2")).toThrow("given twice");
  });

  it("sanitises ids", () => {
    expect(sanitizeId("My-App.Web")).toBe("my_app_web");
    expect(planId("p_", { containerName: "x", project: "stack", service: "db" }, false)).toBe("p_db");
    expect(planId("p_", { containerName: "x", project: "Stack", service: "db" }, true)).toBe("p_stack_db");
    expect(planId("p_", { containerName: "/odd--Name", project: undefined, service: undefined }, true)).toBe(
      "p__odd_name",
    );
  });

  it("validates cron", () => {
    for (const ok of ["0 2 * * *", "15 3 * * *", "*/5 * * * 1-5", "0 0 1 jan,jul *", "@daily"])
      expect(() => checkCron(ok)).not.toThrow();
    // @daily is valid as a label: it is written as '0 0 * * *' (see backrest-rules.test.ts).
    expect(() => checkCron("0 2 * *")).toThrow("5 fields");
    expect(() => checkCron("61 2 * * *")).toThrow("minute '61' is out of range");
    expect(() => checkCron("0 5-2 * * *")).toThrow("runs backwards");
  });
});

describe("plans from labels and mounts", () => {
  it("builds the seed's db plan: volume source, exclude rewritten through the mount, $SELF written in", () => {
    const set = buildPlans([db()], OPTIONS);
    expect(set.errors).toEqual([]);
    expect(set.plans.get("backrest_sidecar_db")?.plan).toEqual({
      id: "backrest_sidecar_db",
      repo: "default",
      schedule: "15 3 * * *",
      sources: ["/var/lib/docker/volumes/stack_pgdata/_data"],
      exclude: ["/var/lib/docker/volumes/stack_pgdata/_data/pg_wal"],
      hooks: { pre: ["sh -c 'docker stop stack-db-1'"], post: ["sh -c 'docker start stack-db-1'"] },
      retention: { spec: "daily=7,weekly=4,monthly=6" },
      mode: "live",
    });
  });

  it("snapshot and dump plans: /volumes paths and the endpoint's hooks, a dump through restic's --stdin-from-command", () => {
    const socket = "/run/stowage/sidecar.sock";
    const app = {
      ...db(),
      id: "app-id",
      name: "stack-app-1",
      labels: { ...db().labels, "com.docker.compose.service": "app" },
    };
    const pg = { ...db({}, { "restic-compose-backup.postgres": "true" }), id: "pg-id" };
    const modes = new Map([
      ["app-id", { mode: "snapshot" as const }],
      ["pg-id", { mode: "dump" as const }],
    ]);
    const set = buildPlans([app, pg], { ...OPTIONS, modes, socket });
    expect(set.errors).toEqual([]);
    const snapshot = set.plans.get("backrest_sidecar_app")?.plan;
    expect(snapshot).toMatchObject({
      mode: "snapshot",
      sources: ["/volumes/app"],
      exclude: ["/volumes/app/var/lib/postgresql/data/pg_wal"],
    });
    const rendered = toBackrestPlan(snapshot as SidecarPlan, undefined, () => {});
    const call = (action: string) =>
      `curl --fail-with-body -sS --unix-socket ${socket} -X POST http://backrest-sidecar/v1/plans/backrest_sidecar_app/${action}\n{{/* backrest-sidecar */}}`;
    expect(rendered.paths).toEqual(["/volumes/app"]);
    expect((rendered.hooks as unknown[])[0]).toEqual({
      conditions: ["CONDITION_SNAPSHOT_START"],
      actionCommand: { command: call("prepare") },
      onError: "ON_ERROR_FATAL",
    });
    expect((rendered.hooks as unknown[]).at(-1)).toEqual({
      conditions: ["CONDITION_SNAPSHOT_END", "CONDITION_SNAPSHOT_ERROR"],
      actionCommand: { command: call("finish") },
      onError: "ON_ERROR_FATAL",
    });
    const dump = set.plans.get("backrest_sidecar_db")?.plan as SidecarPlan;
    expect(dump).toMatchObject({ mode: "dump", sources: [], dumpFile: "/databases/db/all.sql" });
    // A flag a person set in the UI stays, before ours; an old source of ours is replaced.
    const existing = {
      backup_flags: ["--one-file-system", "--stdin-from-command", "--stdin-filename", "/old", "-- old"],
    };
    const dumped = toBackrestPlan(dump, existing, () => {});
    expect(dumped.paths).toBeUndefined();
    expect(dumped.backup_flags).toEqual([
      "--one-file-system",
      "--stdin-from-command",
      "--stdin-filename",
      "/databases/db/all.sql",
      `-- curl -fsS -w '%{stderr}%header{x-stowage-error}' --unix-socket ${socket} -X POST http://backrest-sidecar/v1/plans/backrest_sidecar_db/dump`,
    ]);
    // Back to live (no --socket): our source is dropped, the person's flag stays.
    const live = buildPlans([pg], OPTIONS).plans.get("backrest_sidecar_db")?.plan as SidecarPlan;
    expect(toBackrestPlan(live, dumped, () => {}).backup_flags).toEqual(["--one-file-system"]);
  });

  it("rewrites include paths through mounts, keeps and warns about paths in no mount", () => {
    const mounts = [
      { type: "bind", source: "/srv/app/config", destination: "/config" },
      { type: "volume", name: "data", source: "/x", destination: "/data" },
    ];
    expect(hostPathOf("/data/sub/", mounts, "/vp")).toBe("/vp/data/_data/sub");
    expect(hostPathOf("/config", mounts, "/vp")).toBe("/srv/app/config");
    expect(hostPathOf("/elsewhere", mounts, "/vp")).toBeUndefined();
    const set = buildPlans(
      [db({ mounts }, { "backrest.paths.include": "/data/sub,/elsewhere", "backrest.paths.exclude": "" })],
      OPTIONS,
    );
    expect(set.plans.get("backrest_sidecar_db")?.plan.sources).toEqual([
      "/elsewhere",
      "/vp/data/_data/sub".replace("/vp", "/var/lib/docker/volumes"),
    ]);
    expect(set.warnings.map((w) => w.message)).toEqual([
      "backrest.paths.include path /elsewhere is in no mount of stack-db-1; kept as a host path",
    ]);
  });

  it("unites replicas, refuses two projects on one id, skips unknown repos, errors without sources", () => {
    const replica = db({
      id: "def",
      name: "stack-db-2",
      mounts: [{ type: "bind", source: "/srv/db2", destination: "/extra" }],
    });
    const united = buildPlans([db(), replica], OPTIONS).plans.get("backrest_sidecar_db");
    expect(united?.plan.sources).toEqual(["/srv/db2", "/var/lib/docker/volumes/stack_pgdata/_data"]);
    expect(united?.plan.hooks?.pre).toEqual(["sh -c 'docker stop stack-db-1 stack-db-2'"]);
    const other = db({ id: "x", name: "other-db-1" }, { "com.docker.compose.project": "other" });
    const clash = buildPlans([db(), other], OPTIONS);
    expect(clash.plans.size).toBe(0);
    expect(clash.errors[0]?.message).toContain("containers other-db-1 and stack-db-1 of different projects");
    expect(clash.errors[0]?.message).toContain("--include-project-name");
    expect(buildPlans([db(), other], { ...OPTIONS, includeProject: true }).plans.size).toBe(2);
    expect(buildPlans([db({}, { "backrest.repo": "nowhere" })], OPTIONS).skipped[0]?.message).toContain(
      "repository 'nowhere' is not in the config",
    );
    expect(buildPlans([db({ mounts: [] })], OPTIONS).errors[0]?.message).toContain("no sources");
    expect(buildPlans([db({}, { "backrest.keep": "daily=seven" })], OPTIONS).errors[0]?.message).toContain(
      "label backrest.keep=daily=seven on container stack-db-1",
    );
    expect(
      buildPlans([db({}, { "backrest.repo": "" })], { ...OPTIONS, repos: ["first"] }).plans.get(
        "backrest_sidecar_db",
      )?.plan.repo,
    ).toBe("first");
  });
});

describe("config formats", () => {
  it("detects the seed's model and Backrest's own", () => {
    expect(detectFormat({ repos: [{ id: "default", type: "s3", url: "s3:x" }], plans: [] })).toBe("seed");
    expect(detectFormat({ modno: 3, version: 6, repos: [{ id: "r", uri: "/x" }] })).toBe("backrest");
  });

  it("maps keep specs to Backrest's retention, and keeps everything where Backrest cannot say what the spec keeps", () => {
    const warnings: string[] = [];
    const warn = (w: string) => warnings.push(w);
    expect(backrestRetention("last=3", warn)).toEqual({ policyKeepLastN: 3 });
    expect(backrestRetention("daily=7,weekly=4,last=2", warn)).toEqual({
      policyTimeBucketed: { daily: 7, weekly: 4, keepLastN: 2 },
    });
    expect(backrestRetention("daily=unlimited,weekly=unlimited", warn)).toEqual({ policyKeepAll: true });
    expect(backrestRetention("last=unlimited,daily=3,within=1y", warn)).toEqual({ policyKeepAll: true });
    expect(warnings).toEqual([]);
    // Bucketed without within=90d would forget snapshots of the last 90 days the label keeps.
    expect(backrestRetention("daily=7,weekly=4,last=2,within=90d", warn)).toEqual({ policyKeepAll: true });
    expect(backrestRetention("daily=unlimited,weekly=4", warn)).toEqual({ policyKeepAll: true });
    expect(warnings).toEqual([
      "keep within=90d has no Backrest retention equivalent; the plan keeps every snapshot (policyKeepAll) so that Backrest forgets nothing the spec keeps",
      "keep daily=unlimited has no Backrest retention equivalent; the plan keeps every snapshot (policyKeepAll) so that Backrest forgets nothing the spec keeps",
    ]);
  });

  it("writes schedule and marked hooks over the existing plan, keeping fields it does not own and hooks a person added", () => {
    const plan = buildPlans([db()], OPTIONS).plans.get("backrest_sidecar_db")?.plan;
    if (!plan) throw new Error("no plan");
    const uiHook = {
      conditions: ["CONDITION_SNAPSHOT_ERROR"],
      actionShoutrrr: { shoutrrrUrl: "ntfy://ntfy.sh/x" },
    };
    const legacyStop = {
      conditions: ["CONDITION_SNAPSHOT_START"],
      actionCommand: { command: "sh -c 'docker stop stack-db-1'" },
      onError: "ON_ERROR_FATAL",
    };
    const legacyStart = {
      conditions: ["CONDITION_SNAPSHOT_END"],
      actionCommand: { command: "sh -c 'docker start stack-db-1'" },
    };
    const existing = {
      id: plan.id,
      skipIfUnchanged: true,
      paths: ["/old"],
      hooks: [legacyStop, uiHook, legacyStart],
    };
    const rendered = toBackrestPlan(plan, existing, () => {});
    expect(rendered).toEqual({
      id: "backrest_sidecar_db",
      repo: "default",
      paths: ["/var/lib/docker/volumes/stack_pgdata/_data"],
      excludes: ["/var/lib/docker/volumes/stack_pgdata/_data/pg_wal"],
      schedule: { cron: "15 3 * * *", clock: "CLOCK_LOCAL" },
      retention: { policyTimeBucketed: { daily: 7, weekly: 4, monthly: 6 } },
      hooks: [
        {
          conditions: ["CONDITION_SNAPSHOT_START"],
          actionCommand: { command: "sh -c 'docker stop stack-db-1'\n{{/* backrest-sidecar */}}" },
          onError: "ON_ERROR_FATAL",
        },
        {
          conditions: ["CONDITION_SNAPSHOT_END", "CONDITION_SNAPSHOT_ERROR"],
          actionCommand: { command: "sh -c 'docker start stack-db-1'\n{{/* backrest-sidecar */}}" },
        },
        uiHook,
      ],
      skipIfUnchanged: true,
    });
    // Rendering over our own output changes nothing: our marked hooks are replaced, not doubled.
    expect(toBackrestPlan(plan, rendered, () => {})).toEqual(rendered);
  });

  it("notification labels become Backrest's shoutrrr and healthchecks hooks on start, success and error", () => {
    const labels = {
      "backrest.notify": "https://user:secret@hooks.example/x?token=t, discord://token@channel",
      "backrest.healthchecks": "https://hc-ping.com/0b5c",
    };
    const plan = buildPlans([db({}, labels)], OPTIONS).plans.get("backrest_sidecar_db")?.plan;
    if (!plan) throw new Error("no plan");
    const hooks = (toBackrestPlan(plan, undefined, () => {}).hooks as Array<Record<string, unknown>>).slice(
      2,
    );
    const conditions = ["CONDITION_SNAPSHOT_START", "CONDITION_SNAPSHOT_SUCCESS", "CONDITION_SNAPSHOT_ERROR"];
    const template = "{{/* backrest-sidecar */}}{{ .Summary }}";
    expect(hooks).toEqual([
      {
        conditions,
        actionShoutrrr: { shoutrrrUrl: "generic+https://user:secret@hooks.example/x?token=t", template },
      },
      { conditions, actionShoutrrr: { shoutrrrUrl: "discord://token@channel", template } },
      { conditions, actionHealthchecks: { webhookUrl: "https://hc-ping.com/0b5c", template } },
    ]);
    const bad = buildPlans([db({}, { "backrest.notify": "not a url" })], OPTIONS);
    expect(bad.errors.map((e) => e.message)).toEqual([
      "label backrest.notify on container stack-db-1: is not a URL (a shoutrrr URL such as discord://token@id, or http(s)://...)",
    ]);
  });

  it("a repository's defaults apply where labels are silent; labels win", () => {
    const repoDefaults = {
      file: "/etc/repo-defaults.yaml",
      repos: new Map([
        [
          "default",
          {
            schedule: "0 4 * * *",
            keep: "last=5",
            hooks: { pre: ["echo pre $SELF"] },
            healthchecks: "https://hc-ping.com/repo",
          },
        ],
      ]),
    };
    const bare = { ...db(), labels: { "backrest.enable": "true", "com.docker.compose.service": "db" } };
    const plain = buildPlans([bare], { ...OPTIONS, repoDefaults }).plans.get("backrest_sidecar_db")?.plan;
    expect(plain).toMatchObject({
      schedule: "0 4 * * *",
      retention: { spec: "last=5" },
      hooks: { pre: ["echo pre stack-db-1"] },
      healthchecks: "https://hc-ping.com/repo",
    });
    const labelled = buildPlans([db()], { ...OPTIONS, repoDefaults }).plans.get("backrest_sidecar_db")?.plan;
    expect(labelled).toMatchObject({
      schedule: "15 3 * * *",
      retention: { spec: "daily=7,weekly=4,monthly=6" },
    });
    const broken = { file: "/r.yaml", repos: new Map([["default", { schedule: "@reboot" }]]) };
    expect(buildPlans([bare], { ...OPTIONS, repoDefaults: broken }).errors[0]?.message).toMatch(
      /^--repo-defaults \/r\.yaml \(repository default\) schedule @reboot: /,
    );
  });

  it("merges: upsert ours, remove our orphans, never touch others or problem ids; compares order-insensitively", () => {
    const config = {
      format: "seed" as const,
      exists: true,
      data: {
        repos: [{ id: "default" }],
        plans: [
          { id: "manual", repo: "default" },
          { id: "backrest_sidecar_gone", repo: "default" },
          { id: "backrest_sidecar_broken", repo: "default" },
        ],
      },
    };
    const plan = buildPlans([db()], OPTIONS).plans.get("backrest_sidecar_db")?.plan;
    if (!plan) throw new Error("no plan");
    const merged = mergePlans(config, new Map([[plan.id, plan]]), {
      prefix: "backrest_sidecar_",
      untouched: new Set(["backrest_sidecar_broken"]),
      keepOrphans: false,
      warn: () => {},
    });
    expect((merged.data.plans as Array<{ id: string }>).map((p) => p.id)).toEqual([
      "manual",
      "backrest_sidecar_broken",
      "backrest_sidecar_db",
    ]);
    expect(merged.removed).toEqual(["backrest_sidecar_gone"]);
    expect(canonical({ plans: [{ id: "b" }, { id: "a" }] })).toBe(
      canonical({ plans: [{ id: "a" }, { id: "b" }] }),
    );
  });
});
