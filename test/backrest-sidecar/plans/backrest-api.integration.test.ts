import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import path from "node:path";
import { expect, it } from "vitest";
import { run } from "../../../src/system/exec.js";
import {
  BACKREST_RESTIC_BIN,
  backrestUser,
  startBackrestWithRepo as backrestWithRepo,
  describeWithBackrest,
  type RunningBackrest,
} from "../../support/backrest.js";
import { freePort, useScope } from "../../support/scope.js";
import { CLI, fillVolume, SIDECAR_ENV, sidecar, world } from "../harness.js";

type Json = Record<string, unknown>;

const plansOf = async (backrest: RunningBackrest) => ((await backrest.ok("GetConfig")).plans ?? []) as Json[];

const planIdOf = (marker: string, service: string) =>
  `backrest_sidecar_${marker.replaceAll("-", "_")}_${service}`;

/** What the UI does on "save": the config as read, changed, sent back with the modno it had. */
async function uiEdit(backrest: RunningBackrest, change: (config: Json) => void) {
  const config = await backrest.ok("GetConfig");
  change(config);
  return backrest.ok("SetConfig", config);
}

describeWithBackrest("backrest-sidecar drives a running Backrest v1.14.1 through its API", () => {
  const scope = useScope();

  it("reconciles into the live config: Backrest's process unchanged, its own file saved by Backrest, exit 0 then 2", async () => {
    const { backrest } = await backrestWithRepo(scope);
    const w = await world(scope);
    const data = await w.volume("data");
    await w.container("app", { "backrest.enable": "true" }, [`${data}:/data`]);
    const pid = backrest.pid();
    const result = await sidecar(["reconcile", "--backrest-url", backrest.url, ...w.only]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.logs.find((l) => l.action === "config.written")).toMatchObject({ store: "api" });
    const plan = (await plansOf(backrest)).find((p) => p.id === planIdOf(w.marker, "app"));
    expect(plan).toMatchObject({
      repo: "default",
      paths: [`/var/lib/docker/volumes/${data}/_data`],
      schedule: { cron: "0 2 * * *", clock: "CLOCK_LOCAL" },
    });
    expect(backrest.pid()).toBe(pid);
    // Backrest saved it to its own file: a restart keeps it.
    expect(await readFile(backrest.configFile, "utf8")).toContain(planIdOf(w.marker, "app"));
    const again = await sidecar(["reconcile", "--backrest-url", backrest.url, ...w.only]);
    expect(again.status, again.stderr).toBe(2);
    const dry = await sidecar(["reconcile", "--dry-run", "--backrest-url", backrest.url, ...w.only]);
    expect(dry.status).toBe(2);
  });

  it("keeps what a person changed in the UI between two reconciles: other plans, repositories, our plans' other fields and hooks", async () => {
    const { backrest } = await backrestWithRepo(scope);
    const w = await world(scope);
    const args = ["--backrest-url", backrest.url, ...w.only];
    await w.container("app", { "backrest.enable": "true" }, ["/srv:/srv"]);
    expect((await sidecar(["reconcile", ...args])).status).toBe(0);
    const ours = planIdOf(w.marker, "app");
    const uiHook = {
      conditions: ["CONDITION_SNAPSHOT_ERROR"],
      actionCommand: { command: "echo failed >> /tmp/ui-hook" },
    };
    await uiEdit(backrest, (config) => {
      const plans = config.plans as Json[];
      plans.push({ id: "ui-made", repo: "default", paths: ["/etc"], schedule: { disabled: true } });
      const plan = plans.find((p) => p.id === ours) as Json;
      plan.skipIfUnchanged = true;
      plan.iexcludes = ["*.TMP"];
      plan.hooks = [...((plan.hooks as Json[]) ?? []), uiHook];
      ((config.repos as Json[])[0] as Json).prunePolicy = { schedule: { maxFrequencyDays: 7 } };
    });
    // A label change, and a second container: both reach Backrest, and nothing of the person's is lost.
    await run("docker", ["rm", "-f", `${w.marker}-app`]);
    await w.container("app", { "backrest.enable": "true", "backrest.schedule": "30 4 * * *" }, ["/srv:/srv"]);
    await w.container("web", { "backrest.enable": "true" }, ["/var/www:/www"]);
    const result = await sidecar(["reconcile", ...args]);
    expect(result.status, result.stderr).toBe(0);
    const config = await backrest.ok("GetConfig");
    const plans = config.plans as Json[];
    expect(plans.find((p) => p.id === "ui-made")).toMatchObject({ paths: ["/etc"] });
    expect(plans.find((p) => p.id === planIdOf(w.marker, "web"))).toBeDefined();
    expect(plans.find((p) => p.id === ours)).toMatchObject({
      schedule: { cron: "30 4 * * *" },
      skipIfUnchanged: true,
      iexcludes: ["*.TMP"],
      hooks: [uiHook],
    });
    expect((config.repos as Json[])[0]).toMatchObject({ prunePolicy: { schedule: { maxFrequencyDays: 7 } } });
  });

  it("--repo-defaults gives a repository's plans their schedule, retention and hooks (labels win); status reads the live config", async () => {
    const { backrest } = await backrestWithRepo(scope);
    const w = await world(scope);
    await w.container("plain", { "backrest.enable": "true" }, ["/srv:/srv"]);
    await w.container("own", { "backrest.enable": "true", "backrest.schedule": "5 1 * * *" }, ["/srv:/srv"]);
    await w.container("lost", { "backrest.enable": "true", "backrest.repo": "nowhere" }, ["/srv:/srv"]);
    const dir = await scope.tempDir("stowage-sidecar-defaults-");
    const defaults = path.join(dir, "repo-defaults.yaml");
    await writeFile(
      defaults,
      [
        "default:",
        '  schedule: "0 4 * * 1-5"',
        "  keep: last=9",
        "  hooks:",
        "    post: [echo done $SELF]",
      ].join("\n"),
    );
    const args = ["--backrest-url", backrest.url, "--repo-defaults", defaults, ...w.only];
    const result = await sidecar(["reconcile", ...args]);
    expect(result.status, result.stderr).toBe(0); // a skipped plan (unknown repository) is a warning
    const plans = await plansOf(backrest);
    expect(plans.find((p) => p.id === planIdOf(w.marker, "plain"))).toMatchObject({
      schedule: { cron: "0 4 * * 1-5" },
      retention: { policyKeepLastN: 9 },
      hooks: [{ actionCommand: { command: `echo done ${w.marker}-plain\n{{/* backrest-sidecar */}}` } }],
    });
    expect(plans.find((p) => p.id === planIdOf(w.marker, "own"))).toMatchObject({
      schedule: { cron: "5 1 * * *" },
    });
    const status = await sidecar(["status", "--json", ...args]);
    expect(status.status, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual([
      expect.objectContaining({ container: `${w.marker}-lost`, state: "skipped" }),
      expect.objectContaining({ container: `${w.marker}-own`, state: "planned" }),
      expect.objectContaining({ container: `${w.marker}-plain`, state: "planned" }),
    ]);
    const broken = path.join(dir, "broken.yaml");
    await writeFile(broken, "default:\n  schedule: '@reboot'\n");
    const refused = await sidecar([
      "reconcile",
      "--backrest-url",
      backrest.url,
      "--repo-defaults",
      broken,
      ...w.only,
    ]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`--repo-defaults ${broken} (repository default) schedule @reboot:`);
  });

  it("concurrent UI saves and reconciles: modno conflicts are read again and merged, nothing is lost", async () => {
    const { backrest } = await backrestWithRepo(scope);
    const w = await world(scope);
    for (const name of ["a", "b", "c"]) await w.container(name, { "backrest.enable": "true" }, ["/srv:/srv"]);
    let saves = 0;
    let refused = 0;
    let stop = false;
    // A person saving in the UI several times a second: each save adds a plan of theirs. (Saving
    // back to back, without a pause, can win five races in a row: that bound is tested below.)
    const person = (async () => {
      while (!stop) {
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
        const config = await backrest.ok("GetConfig");
        config.plans = [
          ...((config.plans as Json[]) ?? []),
          { id: `ui-${saves}`, repo: "default", paths: ["/etc"] },
        ];
        const answer = await backrest.call("SetConfig", config);
        if (answer.status === 200) saves++;
        else refused++;
      }
    })();
    const runs = await Promise.all(
      [0, 1, 2].map(() => sidecar(["reconcile", "--backrest-url", backrest.url, ...w.only])),
    );
    stop = true;
    await person;
    for (const result of runs) expect([0, 2], result.stderr).toContain(result.status);
    const conflicts = runs.flatMap((r) => r.logs.filter((l) => l.action === "config.conflict"));
    expect(conflicts.length + refused).toBeGreaterThan(0);
    const ids = (await plansOf(backrest)).map((p) => p.id);
    for (const name of ["a", "b", "c"]) expect(ids).toContain(planIdOf(w.marker, name));
    for (let i = 0; i < saves; i++) expect(ids).toContain(`ui-${i}`);
  });

  it("a writer that always saves just before us: bounded retries, then exit 3 naming the conflict, their config intact", async () => {
    const { backrest } = await backrestWithRepo(scope);
    const w = await world(scope);
    await w.container("app", { "backrest.enable": "true" }, ["/srv:/srv"]);
    // In front of Backrest: before each SetConfig of ours reaches it, a person's save lands.
    let theirs = 0;
    const proxy = createServer(async (request, response) => {
      let body = "";
      for await (const chunk of request) body += chunk;
      if (request.url?.endsWith("/SetConfig"))
        await uiEdit(backrest, (config) => {
          config.plans = [
            ...((config.plans as Json[]) ?? []),
            { id: `person-${theirs++}`, repo: "default", paths: ["/etc"] },
          ];
        });
      const answer = await fetch(`${backrest.url}${request.url}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body,
      });
      response.writeHead(answer.status, { "Content-Type": "application/json" }).end(await answer.text());
    });
    const port = await freePort();
    await new Promise<void>((resolve) => proxy.listen(port, "127.0.0.1", resolve));
    scope.defer("close the proxy", () => new Promise((resolve) => proxy.close(resolve)));
    const result = await sidecar(["reconcile", "--backrest-url", `http://127.0.0.1:${port}`, ...w.only]);
    expect(result.status, result.stderr).toBe(3);
    const conflicts = result.logs.filter((l) => l.action === "config.conflict");
    expect(conflicts).toHaveLength(5);
    expect(conflicts.at(-1)?.msg).toMatch(
      /config modno mismatch, reload and try again.*gave up after 5 attempts/,
    );
    const ids = (await plansOf(backrest)).map((p) => p.id);
    expect(ids).not.toContain(planIdOf(w.marker, "app"));
    for (let i = 0; i < theirs; i++) expect(ids).toContain(`person-${i}`);
  });

  it("a Backrest backup under way finishes with success while reconciles change plans", async () => {
    const { backrest } = await backrestWithRepo(scope);
    const w = await world(scope);
    const data = await w.volume("big");
    await fillVolume(
      data,
      "for i in $(seq 1 40); do dd if=/dev/urandom of=/data/f$i bs=1M count=8 2>/dev/null; done",
    );
    await w.container("big", { "backrest.enable": "true" }, [`${data}:/data`]);
    const args = ["--backrest-url", backrest.url, ...w.only];
    expect((await sidecar(["reconcile", ...args])).status).toBe(0);
    let settled = false;
    const backup = backrest.call("Backup", { value: planIdOf(w.marker, "big") }).finally(() => {
      settled = true;
    });
    // Reconciles that change the config while restic runs.
    for (let i = 0; i < 3; i++) {
      await w.container(`extra${i}`, { "backrest.enable": "true" }, ["/srv:/srv"]);
      const result = await sidecar(["reconcile", ...args]);
      expect(result.status, result.stderr).toBe(0);
      if (i === 0)
        expect(settled, "the backup ended before the first reconcile: no overlap to test").toBe(false);
    }
    const answer = await backup;
    expect(answer, await backrest.log()).toMatchObject({ status: 200 });
    const operations = (await backrest.ok("GetOperations", {
      selector: { planId: planIdOf(w.marker, "big") },
    })) as { operations?: Json[] };
    const statuses = (operations.operations ?? []).filter((o) => "operationBackup" in o).map((o) => o.status);
    expect(statuses).toContain("STATUS_SUCCESS");
    expect(statuses).not.toContain("STATUS_ERROR");
  });

  it("auth on: the user's credentials from a file work; none, or a wrong password, is exit 1 naming the URL, never the password", async () => {
    const password = "correct horse battery staple";
    const { backrest } = await backrestWithRepo(scope, {
      users: [await backrestUser("admin", password)],
      auth: { user: "admin", password },
    });
    const w = await world(scope);
    await w.container("app", { "backrest.enable": "true" }, ["/srv:/srv"]);
    const dir = await scope.tempDir("stowage-sidecar-auth-");
    const good = path.join(dir, "good");
    const bad = path.join(dir, "bad");
    await writeFile(good, `${password}\n`, { mode: 0o600 });
    await writeFile(bad, "wrong-password-123\n", { mode: 0o600 });
    const args = ["reconcile", "--backrest-url", backrest.url, ...w.only];
    const none = await sidecar(args);
    expect(none.status).toBe(1);
    expect(none.stderr).toContain(`Backrest at ${backrest.url} wants credentials`);
    const wrong = await sidecar([...args, "--backrest-user", "admin", "--backrest-password-file", bad]);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain(`Backrest at ${backrest.url} refused the credentials of user 'admin'`);
    expect(wrong.stderr).not.toContain("wrong-password-123");
    const fromEnv = await sidecar(args, { BACKREST_USER: "admin", BACKREST_PASSWORD_FILE: good });
    expect(fromEnv.status, fromEnv.stderr).toBe(0);
    expect(fromEnv.stderr).not.toContain(password);
    // The user's hash that GetConfig hides is put back by Backrest: the user can still log in.
    expect((await backrest.call("GetConfig", {}, { user: "admin", password })).status).toBe(200);
    const url = await sidecar([...args.slice(0, 2), `http://admin:${password}@127.0.0.1:1/`]);
    expect(url.status).toBe(1);
    expect(url.stderr).toContain("--backrest-url must not carry credentials");
    expect(url.stderr).not.toContain(password);
  });

  it("Backrest down: exit 1 naming the URL; nothing else touched", async () => {
    const { backrest } = await backrestWithRepo(scope);
    const w = await world(scope);
    await w.container("app", { "backrest.enable": "true" }, ["/srv:/srv"]);
    await backrest.stop();
    const result = await sidecar(["reconcile", "--backrest-url", backrest.url, ...w.only]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`cannot reach Backrest at ${backrest.url}: ECONNREFUSED`);
    const status = await sidecar(["status", "--backrest-url", backrest.url, ...w.only]);
    expect(status.status).toBe(1);
  });

  it("file-mode flags are refused with --backrest-url (nothing restarts Backrest in API mode)", async () => {
    for (const flags of [["--apply"], ["--reload-cmd", "true"], ["--config", "/c.json"]]) {
      const result = await sidecar(["reconcile", "--backrest-url", "http://127.0.0.1:1", ...flags]);
      expect(result.status, result.stderr).toBe(2);
    }
  });

  it("daemon --with-events: containers started and removed show in the live config within seconds; Backrest down and back is retried; SIGTERM exits 0", async () => {
    const { backrest } = await backrestWithRepo(scope);
    const w = await world(scope);
    const logs: Json[] = [];
    const daemon = spawn(
      process.execPath,
      [CLI, "daemon", "--backrest-url", backrest.url, "--with-events", "--interval", "1h", ...w.only],
      { env: { ...process.env, ...SIDECAR_ENV }, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    daemon.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
      for (const line of chunk.toString().split("\n")) if (line.startsWith("{")) logs.push(JSON.parse(line));
    });
    scope.defer("stop the daemon", async () => {
      if (daemon.exitCode === null) {
        daemon.kill("SIGKILL");
        await once(daemon, "exit");
      }
    });
    const until = async (what: string, check: () => Promise<boolean>, ms = 10_000) => {
      const start = Date.now();
      while (!(await check())) {
        if (Date.now() - start > ms) throw new Error(`${what} not within ${ms} ms\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return Date.now() - start;
    };
    const has = (id: string) => async () => (await plansOf(backrest)).some((p) => p.id === id);
    await until("first reconcile", async () => logs.some((l) => l.action === "reconcile.complete"));
    await w.container("web", { "backrest.enable": "true" }, ["/srv:/srv"], { start: true });
    const shown = await until("new plan", has(planIdOf(w.marker, "web")));
    expect(shown).toBeLessThan(5_000);
    await run("docker", ["rm", "-f", `${w.marker}-web`]);
    await until("plan removed", async () => !(await has(planIdOf(w.marker, "web"))()));
    // A UI save between two events: the daemon's next write, made from the config Backrest last
    // answered it, is refused for its modno, read again and merged; the person's change stays.
    await uiEdit(backrest, (config) => {
      config.plans = [
        ...((config.plans as Json[] | undefined) ?? []),
        { id: "ui-between-events", repo: "default", paths: ["/etc"], schedule: { disabled: true } },
      ];
    });
    await w.container("cache", { "backrest.enable": "true" }, ["/srv:/srv"]);
    await until("plan after a UI save", has(planIdOf(w.marker, "cache")));
    expect((await plansOf(backrest)).map((p) => p.id)).toContain("ui-between-events");
    expect(logs.filter((l) => l.action === "config.conflict")).toHaveLength(1);
    // Backrest away while a container arrives: retried with backoff, logged, picked up when it is back.
    await backrest.stop();
    await w.container("db", { "backrest.enable": "true" }, ["/srv:/srv"]);
    await until("retry logged", async () => logs.some((l) => l.action === "reconcile.retry"));
    await new Promise((r) => setTimeout(r, 2_000));
    await backrest.start();
    await until("plan after Backrest came back", has(planIdOf(w.marker, "db")), 40_000);
    expect(daemon.exitCode).toBeNull();
    daemon.kill("SIGTERM");
    expect((await once(daemon, "exit"))[0]).toBe(0);
  });

  it("Backrest runs a generated plan: its snapshot holds the volume's data, tagged for the plan", async () => {
    const { backrest, repoDir } = await backrestWithRepo(scope);
    const w = await world(scope);
    const data = await w.volume("files");
    await fillVolume(
      data,
      "mkdir -p /data/sub && echo hello > /data/a.txt && dd if=/dev/urandom of=/data/sub/b.bin bs=64k count=16 2>/dev/null",
    );
    await w.container("files", { "backrest.enable": "true" }, [`${data}:/data`]);
    expect((await sidecar(["reconcile", "--backrest-url", backrest.url, ...w.only])).status).toBe(0);
    const id = planIdOf(w.marker, "files");
    expect((await backrest.call("Backup", { value: id })).status, await backrest.log()).toBe(200);
    const env = {
      ...process.env,
      RESTIC_REPOSITORY: repoDir,
      RESTIC_PASSWORD: "repo-secret",
      RESTIC_CACHE_DIR: path.join(repoDir, ".c"),
    };
    const snapshots = JSON.parse(
      (await run(BACKREST_RESTIC_BIN as string, ["snapshots", "--json", "--retry-lock", "2m"], { env }))
        .stdout,
    ) as Json[];
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]?.tags).toContain(`plan:${id}`);
    const target = await scope.tempDir("stowage-backrest-restored-");
    await run(
      BACKREST_RESTIC_BIN as string,
      ["restore", "latest", "--retry-lock", "2m", "--target", target],
      { env },
    );
    const source = `/var/lib/docker/volumes/${data}/_data`;
    const diff = await run("diff", ["-r", source, path.join(target, source)], { okStatuses: [0, 1] });
    expect(diff.stdout).toBe("");
  });
});
