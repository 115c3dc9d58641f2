import { readdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { RepoReport } from "../../src/rest-server/maintain/maintain-repo.js";
import { run } from "../../src/system/exec.js";
import { htpasswdFile } from "../support/htpasswd.js";
import { type ResticClient, resticClient } from "../support/restic.js";
import { cephS3, testBucket } from "../support/s3.js";
import { freePort, type TestScope, useScope } from "../support/scope.js";
import { request } from "./fixture.js";
import { mirrored, mirroredServer, task } from "./mirror.js";
import { type ServerProcess, spawnServer } from "./process.js";

const DAY = 86_400_000;
const MAINTENANCE_PASSWORD = "maint-Secret-7f3a9";
const ALICE_PASSWORD = "alice-Secret-2b81c";
const KEY_PASSWORD = "repo-Key-Secret-c0d4e";

interface Setup {
  dir: string;
  htpasswd: string;
  maintenancePasswordFile: string;
  keyFile: string;
}

/** htpasswd users (made by the real htpasswd), the password files (0600), as an operator makes them. */
async function setup(scope: TestScope): Promise<Setup> {
  const dir = await scope.tempDir("stowage-maintain-");
  const htpasswd = await htpasswdFile(path.join(dir, "htpasswd"), [
    ["alice", ALICE_PASSWORD],
    ["maintenance", MAINTENANCE_PASSWORD],
  ]);
  const maintenancePasswordFile = path.join(dir, "maintenance.password");
  await writeFile(maintenancePasswordFile, `${MAINTENANCE_PASSWORD}\n`, { mode: 0o600 });
  const keyFile = path.join(dir, "alice-laptop.key");
  await writeFile(keyFile, `${KEY_PASSWORD}\n`, { mode: 0o600 });
  return { dir, htpasswd, maintenancePasswordFile, keyFile };
}

async function maintainFile(
  s: Setup,
  server: string | undefined,
  entry: Record<string, unknown>,
  top: Record<string, unknown> = {},
): Promise<string> {
  const file = path.join(s.dir, `maintain-${Math.random().toString(16).slice(2)}.yaml`);
  const config = {
    ...(server ? { server } : {}),
    user: "maintenance",
    "password-file": s.maintenancePasswordFile,
    "report-dir": path.join(s.dir, "reports"),
    ...top,
    repos: [{ repo: "alice/*", "password-file": s.keyFile, ...entry }],
  };
  await writeFile(file, JSON.stringify(config));
  return file;
}

/** A backup whose snapshot claims `daysAgo` and (fs) was stored then: the file's mtime set with touch. */
async function backupAt(
  restic: ResticClient,
  source: string,
  daysAgo: number,
  storedDir: string | undefined,
  storedDaysAgo = daysAgo,
): Promise<string> {
  // New content each time, so forgetting a snapshot frees its data.
  await run("sh", [
    "-c",
    `rm -f "$1"/blob-* && head -c 3000000 /dev/urandom > "$1/blob-$2"`,
    "sh",
    source,
    String(Math.random()),
  ]);
  const when = new Date(Date.now() - daysAgo * DAY).toISOString().replace("T", " ").slice(0, 19);
  await restic.run(["backup", "--time", when, source], { env: { TZ: "UTC" } });
  const snapshots = await restic.json<Array<{ id: string; time: string }>>(["snapshots"]);
  const newest = snapshots.find((snapshot) => snapshot.time.startsWith(when.replace(" ", "T")));
  const id = (newest ?? (snapshots.at(-1) as { id: string })).id;
  if (storedDir) {
    const at = new Date(Date.now() - storedDaysAgo * DAY);
    await utimes(path.join(storedDir, id), at, at);
  }
  return id;
}

/** Every command line on the machine, sampled until `done` settles. */
function watchCommandLines(done: Promise<unknown>): Promise<string> {
  let seen = "";
  let finished = false;
  done.finally(() => {
    finished = true;
  });
  return (async () => {
    while (!finished) {
      seen += (await run("ps", ["-eo", "args"])).stdout;
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    return seen;
  })();
}

async function appendOnlyServer(scope: TestScope, s: Setup, primary: string): Promise<ServerProcess> {
  return spawnServer(scope, [
    "--path",
    primary,
    "--htpasswd-file",
    s.htpasswd,
    "--append-only",
    "--private-repos",
    "--maintenance-user",
    "maintenance",
    "--listen",
    `127.0.0.1:${await freePort()}`,
  ]);
}

/** An append-only server with a maintenance user, and alice's repository on it (made by restic). */
async function aliceOnAppendOnly(scope: TestScope) {
  const s = await setup(scope);
  const primary = await scope.tempDir("stowage-maintain-primary-");
  const server = await appendOnlyServer(scope, s, primary);
  const restic = await resticClient(scope, `rest:${aliceRepo(server.url)}/alice/laptop/`, {
    password: KEY_PASSWORD,
  });
  await restic.run(["init"]);
  const source = await scope.tempDir("stowage-maintain-source-");
  return { s, primary, server, restic, source, snapshots: path.join(primary, "alice/laptop/snapshots") };
}

const aliceRepo = (url: string) => url.replace("http://", `http://alice:${ALICE_PASSWORD}@`);

describe("rest-server maintain: retention for append-only repositories", () => {
  const scope = useScope();

  it("keeps what its policy says, only through the maintenance user; reports; passwords never in ps, logs or reports", async () => {
    const { s, primary, server, restic, source, snapshots } = await aliceOnAppendOnly(scope);
    const ids: string[] = [];
    for (const daysAgo of [20, 19, 18, 17, 16]) ids.push(await backupAt(restic, source, daysAgo, snapshots));
    ids.push(await backupAt(restic, source, 0, undefined));
    // alice cannot delete in append-only mode (restic's forget would retry this 403 for a minute).
    const snapshot = `/alice/laptop/snapshots/${ids[0]}`;
    expect(
      (await request(server.url, snapshot, { method: "DELETE", auth: ["alice", ALICE_PASSWORD] })).status,
    ).toBe(403);
    expect(await restic.json<unknown[]>(["snapshots"])).toHaveLength(6);

    const config = await maintainFile(s, server.url, { keep: { last: 4 } });
    const running = task(["maintain", "--config", config, "--path", primary]);
    const commandLines = await watchCommandLines(running);
    const result = await running;
    expect(result.stderr).toContain('"outcome":"done"');
    expect(result.status).toBe(0);
    const [report] = JSON.parse(result.stdout) as RepoReport[];
    expect(report).toMatchObject({
      repo: "alice/laptop",
      outcome: "done",
      check: { before: "passed", after: "passed" },
    });
    expect(report?.snapshots.forgotten.sort()).toEqual(ids.slice(0, 2).sort());
    expect(report?.bytes.freed).toBeGreaterThan(5_000_000);
    expect(await restic.json<unknown[]>(["snapshots"])).toHaveLength(4);
    await restic.run(["check", "--read-data"]);
    expect(commandLines).toContain("restic --no-cache");
    for (const secret of [MAINTENANCE_PASSWORD, KEY_PASSWORD, ALICE_PASSWORD]) {
      expect(commandLines).not.toContain(secret);
      expect(result.stdout + result.stderr + server.output()).not.toContain(secret);
    }
    const reports = await readdir(path.join(s.dir, "reports"));
    expect(reports).toHaveLength(1);
    const reportFile = path.join(s.dir, "reports", reports[0] as string);
    expect((await stat(reportFile)).mode & 0o777).toBe(0o600);
    expect(await readFile(reportFile, "utf8")).not.toContain(MAINTENANCE_PASSWORD);

    // A snapshot stored just now that claims to be 30 days old is protected by the minimum age.
    const young = await backupAt(restic, source, 30, undefined);
    const again = await task(["maintain", "--config", config, "--path", primary]);
    expect(again.status).toBe(0);
    const [second] = JSON.parse(again.stdout) as Array<{
      outcome: string;
      snapshots: { protected: Array<{ id: string }> };
    }>;
    expect(second?.outcome).toBe("nothing to forget");
    expect(second?.snapshots.protected.map((entry) => entry.id)).toEqual([young]);
    expect(await restic.json<unknown[]>(["snapshots"])).toHaveLength(5);
  });

  it("refuses after forged snapshots push out more than the allowed share, and after one that claims a future time", async () => {
    const { s, primary, server, restic, source, snapshots } = await aliceOnAppendOnly(scope);
    const real: string[] = [];
    for (const daysAgo of [20, 19, 18, 17]) real.push(await backupAt(restic, source, daysAgo, snapshots));
    // The attacker (alice's append-only credentials) uploads three snapshots newer than every real one.
    for (const daysAgo of [0.3, 0.2, 0.1]) await backupAt(restic, source, daysAgo, undefined);
    const config = await maintainFile(s, server.url, { keep: { last: 2 } });
    const result = await task(["maintain", "--config", config, "--path", primary]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /maintain alice\/laptop: refused: would forget 4 of 7 snapshots \(57%\), more than the allowed 50%: forged snapshots may be pushing real ones out/,
    );
    const [report] = JSON.parse(result.stdout) as Array<{
      outcome: string;
      snapshots: { forgotten: string[] };
    }>;
    expect(report?.outcome).toBe("refused");
    expect(report?.snapshots.forgotten).toEqual([]);
    expect(await restic.json<unknown[]>(["snapshots"])).toHaveLength(7);

    // A snapshot that claims tomorrow stops any run: it was stored before the time it claims.
    await backupAt(restic, source, -1, undefined);
    const future = await task(["maintain", "--config", config, "--path", primary, "--force"]);
    expect(future.status).toBe(0);
    const plain = await task([
      "maintain",
      "--config",
      await maintainFile(s, server.url, { keep: { last: 20 } }),
      "--path",
      primary,
    ]);
    expect(plain.status).toBe(1);
    expect(plain.stderr).toMatch(/refused: 1 snapshot\(s\) claim a time after they were stored/);
  });

  it("refuses when check fails first, and forgets nothing", async () => {
    const { s, primary, server, restic, source, snapshots } = await aliceOnAppendOnly(scope);
    for (const daysAgo of [20, 19, 18]) await backupAt(restic, source, daysAgo, snapshots);
    // A pack damaged on the disk (cut short).
    const packs = (await run("find", [path.join(primary, "alice/laptop/data"), "-type", "f"])).stdout
      .trim()
      .split("\n");
    await run("truncate", ["-s", "-100", packs[0] as string]);
    const result = await task([
      "maintain",
      "--config",
      await maintainFile(s, server.url, { keep: { last: 1 } }),
      "--path",
      primary,
    ]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /maintain alice\/laptop: refused: check failed before anything was forgotten/,
    );
    expect(await restic.json<unknown[]>(["snapshots"])).toHaveLength(3);
  });

  it("bad maintain files and password files readable by others are refused before anything runs", async () => {
    const s = await setup(scope);
    const primary = await scope.tempDir("stowage-maintain-primary-");
    const open = path.join(s.dir, "open.key");
    await writeFile(open, "pw\n", { mode: 0o644 });
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ keep: {} }, /repos\.0\.keep: keeps nothing/],
      [{ keep: { last: 3 }, "min-age": "a week" }, /repos\.0\.min-age: a duration such as 7d/],
      [{ keep: { last: 3 }, "password-file": open }, /may be read by others \(mode 0644\): chmod 600/],
      [{ keep: { lats: 3 } }, /repos\.0\.keep: Unrecognized key: "lats"/],
    ];
    for (const [entry, message] of cases) {
      const result = await task([
        "maintain",
        "--config",
        await maintainFile(s, "http://127.0.0.1:1", entry),
        "--path",
        primary,
      ]);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(message);
    }
    const noServer = await task([
      "maintain",
      "--config",
      await maintainFile(s, undefined, { keep: { last: 1 } }),
      "--path",
      primary,
    ]);
    expect(noServer.stderr).toMatch(/'server' must name the rest-server to go through/);
  });

  it("--maintain inside a server on S3 with a mirror: runs on its schedule; the mirror keeps what prune removed", async () => {
    const ceph = cephS3();
    const s = await setup(scope);
    const bucket = testBucket(scope);
    const mirrorDir = await scope.tempDir("stowage-maintain-mirror-");
    const config = await maintainFile(
      s,
      undefined,
      { keep: { last: 1 }, schedule: "15s", "min-age": "0s" },
      { "max-forget-share": "80%" },
    );
    const server = await mirroredServer(
      scope,
      ["--storage", `s3://${bucket}/p`, "--s3-endpoint", ceph.endpoint],
      ["--mirror", mirrorDir],
      {
        env: ceph.env,
        users: true,
        extra: ["--htpasswd-file", s.htpasswd, "--append-only", "--maintain", config],
      },
    );
    expect(server.output()).toContain('"action":"maintain.schedule"');
    const restic = await resticClient(scope, `rest:${aliceRepo(server.url)}/alice/laptop/`, {
      password: KEY_PASSWORD,
    });
    await restic.run(["init"]);
    const source = await scope.tempDir("stowage-maintain-source-");
    for (const daysAgo of [3, 2, 1]) await backupAt(restic, source, daysAgo, undefined);
    await mirrored(server.url);
    const reports = path.join(s.dir, "reports");
    let report: { outcome: string; snapshots: { forgotten: string[] } } | undefined;
    for (let i = 0; i < 300 && !report; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const names = (await readdir(reports).catch(() => [] as string[])).filter((name) =>
        name.endsWith("alice_laptop.json"),
      );
      if (names.length > 0)
        report = JSON.parse(await readFile(path.join(reports, names[0] as string), "utf8"));
    }
    expect(report?.outcome).toBe("done");
    expect(report?.snapshots.forgotten).toHaveLength(2);
    expect(await restic.json<unknown[]>(["snapshots"])).toHaveLength(1);
    await restic.run(["check"]);
    await mirrored(server.url);
    const onMirror = await resticClient(scope, path.join(mirrorDir, "alice/laptop"), {
      password: KEY_PASSWORD,
    });
    expect(await onMirror.json<unknown[]>(["snapshots"])).toHaveLength(3);
    await onMirror.run(["check", "--read-data"]);
    for (const secret of [MAINTENANCE_PASSWORD, KEY_PASSWORD]) expect(server.output()).not.toContain(secret);
  });
});
