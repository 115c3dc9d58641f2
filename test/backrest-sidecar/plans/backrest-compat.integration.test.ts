import { chmod, chown, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { type TestScope, useScope } from "../../support/scope.js";
import { generic, sidecar, world } from "../harness.js";
import { DB_LABELS } from "../seed-labels.js";

const GOLDEN = path.join(import.meta.dirname, "golden");

/** A Backrest config in the shape Backrest v1.14.1 writes it (camelCase, zero values left out). */
const backrestConfig = (plans: unknown[] = []) => ({
  modno: 3,
  version: 6,
  instance: "my-host",
  repos: [{ id: "default", uri: "/repos/default", guid: "a".repeat(64), password: "secret-password" }],
  plans: [{ id: "ui-made", repo: "default", paths: ["/home"], schedule: { maxFrequencyDays: 1 } }, ...plans],
  auth: { disabled: true },
});

/** A test's world and a Backrest config file (0600, as Backrest keeps it) made from its marker. */
async function setup(scope: TestScope, config: unknown | ((marker: string) => unknown)) {
  const w = await world(scope);
  const dir = await scope.tempDir("stowage-sidecar-compat-");
  const file = path.join(dir, "config.json");
  const content = typeof config === "function" ? (config as (marker: string) => unknown)(w.marker) : config;
  await writeFile(file, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  const args = (...extra: string[]) => ["--config", file, ...w.only, ...extra];
  const plans = async () =>
    new Map(
      (JSON.parse(await readFile(file, "utf8")).plans as Array<Record<string, unknown>>).map((p) => [
        String(p.id),
        p,
      ]),
    );
  return { w, dir, file, args, plans };
}

const idOf = (marker: string, name: string) => `backrest_sidecar_${marker.replaceAll("-", "_")}_${name}`;

describe("backrest-sidecar writes only configs Backrest v1.14.1 loads (real engine)", () => {
  const scope = useScope();

  it("translates schedules with an exact equivalent, refuses the rest per container (exit 3), keeps their old plans", async () => {
    const oldPlan = (marker: string) => ({
      id: idOf(marker, "reboot"),
      repo: "default",
      paths: ["/srv/old"],
      schedule: { cron: "0 4 * * *", clock: "CLOCK_LOCAL" },
    });
    const { w, args, plans } = await setup(scope, (marker: string) => backrestConfig([oldPlan(marker)]));
    const probe = w;
    const made = async (name: string, labels: Record<string, string>) =>
      w.container(name, { "backrest.enable": "true", "backrest.repo": "default", ...labels }, ["/tmp:/data"]);
    await made("daily", { "backrest.schedule": "@daily" });
    await made("hourly", { "backrest.schedule": "@hourly" });
    await made("sunday", { "backrest.schedule": "0 2 * * 7" });
    await made("weekend", { "backrest.schedule": "0 2 * * 5-7" });
    await made("reboot", { "backrest.schedule": "@reboot" });
    await made("never", { "backrest.schedule": "0 2 31 2 *" });
    await made("nothing", { "backrest.keep": "daily=0" });
    const runArgs = args();

    const dry = await sidecar(["reconcile", "--dry-run", ...runArgs]);
    expect(dry.status).toBe(2);
    const result = await sidecar(runArgs);
    expect(result.status, result.stderr).toBe(3);
    for (const outcome of [dry, result]) {
      const errors = outcome.logs.filter((l) => l.action === "plan.error");
      expect(errors.map((e) => e.plan_id).sort()).toEqual(
        ["never", "nothing", "reboot"].map((n) => idOf(probe.marker, n)),
      );
      const message = (name: string) => errors.find((e) => e.plan_id === idOf(probe.marker, name))?.msg;
      expect(message("reboot")).toMatch(
        new RegExp(
          `^label backrest.schedule=@reboot on container ${probe.marker}-reboot: '@reboot' has no five-field equivalent`,
        ),
      );
      expect(message("never")).toContain(`on container ${probe.marker}-never: '0 2 31 2 *' never runs`);
      expect(message("nothing")).toContain(
        `label backrest.keep=daily=0 on container ${probe.marker}-nothing: keeps nothing`,
      );
      const warnings = outcome.logs.filter((l) => l.action === "plan.warning").map((l) => l.msg);
      expect(warnings).toEqual(
        expect.arrayContaining([
          "backrest.schedule: @daily is written as '0 0 * * *'",
          "backrest.schedule: @hourly is written as '0 * * * *'",
          "backrest.schedule: day of week 7 (Sunday) is written as 0: '0 2 * * 0'",
        ]),
      );
    }
    const written = await plans();
    const cron = (name: string) =>
      (written.get(idOf(probe.marker, name))?.schedule as { cron?: string })?.cron;
    expect([cron("daily"), cron("hourly"), cron("sunday"), cron("weekend")]).toEqual([
      "0 0 * * *",
      "0 * * * *",
      "0 2 * * 0",
      "0 2 * * 0,5-6",
    ]);
    expect(written.has(idOf(probe.marker, "never"))).toBe(false);
    expect(written.has(idOf(probe.marker, "nothing"))).toBe(false);
    expect(written.get(idOf(probe.marker, "reboot"))).toEqual(oldPlan(probe.marker));
    // The file holds repository passwords: still 0600.
    expect((await stat(args()[1] as string)).mode & 0o777).toBe(0o600);

    const status = await sidecar(["status", ...runArgs, "--json"]);
    const rows = JSON.parse(status.stdout) as Array<{ planId: string; state: string; reason?: string }>;
    expect(rows.find((r) => r.planId === idOf(probe.marker, "reboot"))).toMatchObject({
      state: "error",
      reason: expect.stringContaining("no five-field equivalent"),
    });
  });

  it("refuses an id Backrest reserves ('_' at both ends) for that container only", async () => {
    const { w, file, plans } = await setup(scope, backrestConfig());
    await w.container("x_", { "backrest.enable": "true", "backrest.repo": "default" }, ["/tmp:/data"]);
    await w.container("fine", { "backrest.enable": "true", "backrest.repo": "default" }, ["/tmp:/data"]);
    const result = await sidecar(["--config", file, ...w.only, "--plan-id-prefix", "_"]);
    expect(result.status, result.stderr).toBe(3);
    const reserved = `_${w.marker.replaceAll("-", "_")}_x_`;
    expect(result.logs.find((l) => l.action === "plan.error")).toMatchObject({
      plan_id: reserved,
      msg: expect.stringContaining("starts and ends with '_', which Backrest reserves for itself"),
    });
    const ids = [...(await plans()).keys()];
    expect(ids).toContain(`_${w.marker.replaceAll("-", "_")}_fine`);
    expect(ids).not.toContain(reserved);
    // An empty prefix would make every plan ours: refused outright.
    const empty = await sidecar(["--config", file, ...w.only, "--plan-id-prefix", ""]);
    expect([empty.status, empty.stderr]).toEqual([1, expect.stringContaining("--plan-id-prefix ''")]);
    const badDefault = await sidecar(["--config", file, ...w.only, "--default-schedule", "@reboot"]);
    expect([badDefault.status, badDefault.stderr]).toEqual([
      1,
      expect.stringContaining("--default-schedule @reboot:"),
    ]);
  });

  it("leaves a config Backrest already refuses alone, with the reason", async () => {
    for (const broken of [
      { ...backrestConfig(), version: 1 },
      backrestConfig([{ id: "ui-daily", repo: "default", paths: ["/x"], schedule: { cron: "@daily" } }]),
      { ...backrestConfig(), repos: [{ id: "default", uri: "/r" }] },
    ]) {
      const { w, file } = await setup(scope, broken);
      await w.container("app", { "backrest.enable": "true", "backrest.repo": "default" }, ["/tmp:/data"]);
      const before = await readFile(file, "utf8");
      const result = await sidecar(["--config", file, ...w.only]);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`${file} is already a config Backrest refuses to load`);
      expect(await readFile(file, "utf8")).toBe(before);
    }
  });

  it("keeps an existing file's mode and owner; writes the seed's own format 0644", async () => {
    const { w, file } = await setup(scope, backrestConfig());
    await w.container("app", { "backrest.enable": "true", "backrest.repo": "default" }, ["/tmp:/data"]);
    await chown(file, 1234, 5678);
    await chmod(file, 0o640);
    expect((await sidecar(["--config", file, ...w.only])).status).toBe(0);
    const info = await stat(file);
    expect([info.mode & 0o777, info.uid, info.gid]).toEqual([0o640, 1234, 5678]);

    const seed = path.join(path.dirname(file), "seed.json");
    await writeFile(
      seed,
      `${JSON.stringify({ repos: [{ id: "default", type: "local", url: "/r" }], plans: [] })}\n`,
      {
        mode: 0o600,
      },
    );
    expect((await sidecar(["--config", seed, ...w.only])).status).toBe(0);
    expect((await stat(seed)).mode & 0o777).toBe(0o644);
  });

  it("after Backrest loaded and rewrote our file (its shape: sorted, identity added), a reconcile changes nothing", async () => {
    const w = await world(scope);
    const dir = await scope.tempDir("stowage-sidecar-compat-");
    const pgdata = await w.volume("pgdata");
    await w.container("db-1", { ...DB_LABELS, "com.docker.compose.project": w.marker }, [
      `${pgdata}:/var/lib/postgresql/data`,
    ]);
    // What backrest-validator -print made of golden/backrest-format.json: Backrest's own rewrite.
    const rewritten = (await readFile(path.join(GOLDEN, "backrest-format.rewritten.json"), "utf8"))
      .replaceAll("WORLD", w.marker)
      .replaceAll("DIR", dir);
    const file = path.join(dir, "config.json");
    await writeFile(file, rewritten, { mode: 0o600 });
    const result = await sidecar(["--config", file, ...w.only]);
    expect(result.status, result.stderr).toBe(2);
    expect(await readFile(file, "utf8")).toBe(rewritten);
    expect(generic(rewritten, w.marker, dir)).toContain('"identity"');
  });
});
