import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { stringify } from "yaml";
import { run } from "../../../src/system/exec.js";
import { describeWithBackrest, type RunningBackrest, startBackrestWithRepo } from "../../support/backrest.js";
import { type ExtraEngine, startEngine } from "../../support/engines.js";
import { TestScope, useScope } from "../../support/scope.js";
import { sidecar, startSidecar } from "../harness.js";

type Json = Record<string, unknown>;

/** One host of the fleet: a real engine and a real Backrest of its own. */
interface Host {
  name: string;
  engine: ExtraEngine;
  backrest: RunningBackrest;
}

/** A targets file, as a person writes it, for these hosts (and any entries given instead). */
function targetOf(host: Host): Json {
  const { engine } = host;
  return {
    name: host.name,
    docker: engine.host,
    ...(engine.tls ? { tls: { ca: engine.tls.ca, cert: engine.tls.cert, key: engine.tls.key } } : {}),
    ...(engine.ssh
      ? { ssh: { identityFile: engine.ssh.privateKey, knownHosts: engine.ssh.knownHosts } }
      : {}),
    backrest: { url: host.backrest.url },
  };
}

const planIds = async (backrest: RunningBackrest) =>
  (((await backrest.ok("GetConfig")).plans ?? []) as Json[]).map((p) => String(p.id)).sort();

describeWithBackrest(
  "a fleet of Docker hosts from one place (real engines: unix, TLS, ssh; real Backrests)",
  () => {
    const fleet = new TestScope();
    const scope = useScope();
    let hosts: Host[] = [];
    let dir: string;

    beforeAll(async () => {
      dir = await fleet.tempDir("stowage-fleet-");
      const kinds = ["unix", "tls", "ssh"] as const;
      const engines = await Promise.all(
        kinds.map((kind) => startEngine(fleet, { kind, name: `fleet-${kind}` })),
      );
      const backrests = await Promise.all(kinds.map(() => startBackrestWithRepo(fleet)));
      hosts = kinds.map((kind, i) => ({
        name: `host-${kind}`,
        engine: engines[i] as ExtraEngine,
        backrest: (backrests[i] as { backrest: RunningBackrest }).backrest,
      }));
    }, 300_000);

    afterAll(async () => {
      await fleet.cleanup();
      // The extra engines never touched the default engine's bridge.
      await run("docker", ["run", "--rm", "stowage-test/busybox:1", "true"]);
    }, 300_000);

    const targets = async (entries: Json[], name = "targets.yaml") => {
      const file = path.join(dir, name);
      await writeFile(file, stringify({ hosts: entries }));
      return file;
    };

    it("labelled containers on each engine end up in their host's Backrest, and only there; status shows every host", async () => {
      for (const host of hosts)
        await host.engine.createContainers(2, {
          prefix: `${host.name}-app`,
          labels: (i) => ({
            "backrest.enable": "true",
            "com.docker.compose.service": `${host.name}-svc${i}`,
          }),
          binds: [`${dir}:/data`],
        });
      const file = await targets(hosts.map(targetOf));
      const result = await sidecar(["reconcile", "--targets", file]);
      expect(result.status, result.stderr).toBe(0);
      for (const host of hosts) {
        const ids = await planIds(host.backrest);
        expect(ids).toEqual([
          `backrest_sidecar_${host.name.replace("-", "_")}_svc0`,
          `backrest_sidecar_${host.name.replace("-", "_")}_svc1`,
        ]);
      }
      expect(
        result.logs
          .filter((l) => l.action === "plan.rendered")
          .map((l) => l.host)
          .sort(),
      ).toEqual(hosts.flatMap((h) => [h.name, h.name]).sort());
      const status = await sidecar(["status", "--json", "--targets", file]);
      expect(status.status, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout)).toEqual(
        hosts.map((h) =>
          expect.objectContaining({
            host: h.name,
            engine: "ok",
            backrest: "ok",
            plans: [expect.anything(), expect.anything()],
          }),
        ),
      );
      // Again: nothing to change anywhere.
      expect((await sidecar(["reconcile", "--targets", file])).status).toBe(2);
    });

    it("a wrong TLS CA, an unreachable Backrest: that host is named and left as it was, the others are reconciled (exit 3)", async () => {
      const [unix, tls, ssh] = hosts as [Host, Host, Host];
      const wrongCa = path.join(dir, "wrong-ca.pem");
      await run("openssl", [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        path.join(dir, "wrong-ca.key"),
        "-out",
        wrongCa,
        "-subj",
        "/CN=not-the-ca",
        "-days",
        "1",
      ]);
      await unix.engine.createContainers(1, {
        prefix: "late",
        labels: { "backrest.enable": "true", "com.docker.compose.service": "late" },
        binds: [`${dir}:/data`],
      });
      const before = await planIds(tls.backrest);
      const entries = [
        targetOf(unix),
        { ...targetOf(tls), tls: { ...(targetOf(tls).tls as Json), ca: wrongCa } },
        { ...targetOf(ssh), backrest: { url: "http://127.0.0.1:1" } },
      ];
      const result = await sidecar(["reconcile", "--targets", await targets(entries, "broken.yaml")]);
      expect(result.status, result.stderr).toBe(3);
      expect(result.stderr).toContain(`host ${tls.name} (${tls.engine.host}): `);
      expect(result.stderr).toMatch(/unable to verify|self.signed|certificate/i);
      expect(result.stderr).toContain(
        `host ${ssh.name} (${ssh.engine.host}): cannot reach Backrest at http://127.0.0.1:1`,
      );
      expect(await planIds(tls.backrest)).toEqual(before);
      expect(await planIds(unix.backrest)).toContain("backrest_sidecar_late");
      const status = await sidecar(["status", "--targets", await targets(entries, "broken.yaml")]);
      expect(status.status).toBe(3);
      expect(status.stdout).toContain(
        `${ssh.name} (${ssh.engine.host}): engine ok; Backrest cannot reach Backrest`,
      );
    });

    it("hosts sharing one Backrest: their plan ids carry the host's name, neither takes the other's plans for orphans", async () => {
      const [unix, tls] = hosts as [Host, Host];
      const shared = await startBackrestWithRepo(scope);
      const entries = [unix, tls].map((h) => ({ ...targetOf(h), backrest: { url: shared.backrest.url } }));
      const result = await sidecar(["reconcile", "--targets", await targets(entries, "shared.yaml")]);
      expect(result.status, result.stderr).toBe(0);
      const ids = await planIds(shared.backrest);
      expect(ids).toContain("backrest_sidecar_host_unix.host_unix_svc0");
      expect(ids).toContain("backrest_sidecar_host_tls.host_tls_svc0");
      expect((await sidecar(["reconcile", "--targets", await targets(entries, "shared.yaml")])).status).toBe(
        2,
      );
    });

    it("daemon: every engine's events at once; an engine killed is that host's problem, its changes arrive once it is back", async () => {
      const [unix, tls, ssh] = hosts as [Host, Host, Host];
      const logs: Json[] = [];
      const file = await targets(hosts.map(targetOf), "daemon.yaml");
      const daemon = startSidecar(
        ["daemon", "--targets", file, "--with-events", "--interval", "1h"],
        {},
        (l) => logs.push(l),
      );
      scope.defer("stop the daemon", async () => {
        if (daemon.exitCode === null) {
          daemon.kill("SIGTERM");
          await once(daemon, "exit");
        }
      });
      const until = async (what: string, check: () => Promise<boolean> | boolean, ms = 60_000) => {
        const start = Date.now();
        while (!(await check())) {
          if (Date.now() - start > ms)
            throw new Error(`${what} not within ${ms} ms: ${JSON.stringify(logs.slice(-8))}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        return Date.now() - start;
      };
      await until("every host reconciled", () =>
        hosts.every((h) => logs.some((l) => l.host === h.name && l.action === "reconcile.complete")),
      );
      const arrives = (host: Host, id: string) => async () => (await planIds(host.backrest)).includes(id);
      const runLabelled = (host: Host, name: string) =>
        host.engine.docker([
          "run",
          "-d",
          "--name",
          name,
          "--label",
          "backrest.enable=true",
          "-v",
          `${dir}:/data`,
          "stowage-test/busybox:1",
          "sleep",
          "3600",
        ]);
      // Events of all three engines.
      for (const host of hosts) await runLabelled(host, `${host.name}-ev`);
      for (const host of hosts)
        await until(
          `${host.name}'s event`,
          arrives(host, `backrest_sidecar_${host.name.replace("-", "_")}_ev`),
        );
      // The TLS engine killed: reported, the others go on.
      await tls.engine.kill9();
      await until("the lost engine reported", () =>
        logs.some((l) => l.host === tls.name && String(l.action).startsWith("events.")),
      );
      await runLabelled(unix, "while-down");
      await until(
        "the unix host's event while the other is down",
        arrives(unix, "backrest_sidecar_while_down"),
      );
      await runLabelled(ssh, "ssh-while-down");
      await until(
        "the ssh host's event while the other is down",
        arrives(ssh, "backrest_sidecar_ssh_while_down"),
      );
      await tls.engine.start();
      await runLabelled(tls, "after-restart");
      await until(
        "the TLS host's change after it came back",
        arrives(tls, "backrest_sidecar_after_restart"),
        90_000,
      );
      expect(daemon.exitCode).toBeNull();
      daemon.kill("SIGTERM");
      expect((await once(daemon, "exit"))[0]).toBe(0);
    });

    it("3 engines x 100 labelled containers: one reconcile of all, each Backrest with its 100 plans", async () => {
      for (const host of hosts)
        await host.engine.createContainers(100, {
          prefix: `${host.name}-many`,
          labels: (i) => ({ "backrest.enable": "true", "com.docker.compose.service": `many${i}` }),
          concurrency: host.engine.kind === "ssh" ? 4 : 8,
          binds: [`${dir}:/data`],
        });
      const started = Date.now();
      const result = await sidecar([
        "reconcile",
        "--targets",
        await targets(hosts.map(targetOf), "many.yaml"),
      ]);
      const took = Date.now() - started;
      expect(result.status, result.stderr).toBe(0);
      for (const host of hosts)
        expect((await planIds(host.backrest)).filter((id) => id.includes("_many"))).toHaveLength(100);
      expect(took).toBeLessThan(120_000);
    });
  },
);
