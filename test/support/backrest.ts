import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, openSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe } from "vitest";
import { run } from "../../src/system/exec.js";
import { requireHost } from "./host.js";
import { freePort, type TestScope, uniqueId } from "./scope.js";

/**
 * Backrest v1.14.1 itself and a restic it works with (>= 0.19.1), built outside the repository
 * from their public sources: `BACKREST_BIN`, `BACKREST_RESTIC_BIN`. Without them the tests that
 * need Backrest do not run, and say so in one line.
 */
export const BACKREST_BIN = process.env.BACKREST_BIN;
export const BACKREST_RESTIC_BIN = process.env.BACKREST_RESTIC_BIN;

const missing = [
  ...(BACKREST_BIN && existsSync(BACKREST_BIN) ? [] : ["BACKREST_BIN"]),
  ...(BACKREST_RESTIC_BIN && existsSync(BACKREST_RESTIC_BIN) ? [] : ["BACKREST_RESTIC_BIN"]),
];

/** `describe` for tests against a real Backrest: skipped, with one line saying why, without one. */
export function describeWithBackrest(name: string, body: () => void): void {
  if (missing.length > 0) {
    process.stderr.write(
      `backrest: '${name}' not run: set ${missing.join(" and ")} to Backrest v1.14.1 and restic >= 0.19.1 executables\n`,
    );
    describe.skip(name, body);
    return;
  }
  describe(name, body);
}

/** A Backrest user as Backrest stores it: the base64 of a bcrypt hash that `htpasswd -nbB` made. */
export async function backrestUser(name: string, password: string): Promise<Record<string, string>> {
  requireHost({ commands: ["htpasswd"] });
  const line = (await run("htpasswd", ["-nbB", "-C", "5", name, password])).stdout.trim();
  const hash = line.slice(line.indexOf(":") + 1);
  return { name, passwordBcrypt: Buffer.from(hash).toString("base64") };
}

export interface RunningBackrest {
  url: string;
  configFile: string;
  dataDir: string;
  pid(): number;
  /** Connect JSON: `POST /v1.Backrest/<method>`; the HTTP status and the parsed body. */
  call(
    method: string,
    body?: unknown,
    auth?: { user: string; password: string },
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  /** The same, failing the test unless Backrest answered 200. */
  ok(
    method: string,
    body?: unknown,
    auth?: { user: string; password: string },
  ): Promise<Record<string, unknown>>;
  /** Stop it (SIGTERM, then SIGKILL after 10 s) and wait for it to be gone. */
  stop(): Promise<void>;
  kill9(): Promise<void>;
  /** Start it again on the same port, config and data. */
  start(): Promise<void>;
  /** What Backrest printed. */
  log(): Promise<string>;
}

/**
 * Start a real Backrest on a loopback port with this config file's content (written 0600 first,
 * as Backrest keeps it) and its own data dir, restic from BACKREST_RESTIC_BIN. Stopped after the test.
 */
export async function startBackrest(
  scope: TestScope,
  config: Record<string, unknown>,
  options: { auth?: { user: string; password: string } } = {},
): Promise<RunningBackrest> {
  if (!BACKREST_BIN || !BACKREST_RESTIC_BIN)
    throw new Error("BACKREST_BIN and BACKREST_RESTIC_BIN must be set");
  const dir = await scope.tempDir("stowage-backrest-");
  const configFile = path.join(dir, "config.json");
  const dataDir = path.join(dir, "data");
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = path.join(dir, "backrest.log");
  let child: ChildProcess | undefined;

  const call: RunningBackrest["call"] = async (method, body = {}, auth = options.auth) => {
    const response = await fetch(`${url}/v1.Backrest/${method}`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        ...(auth
          ? { Authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString("base64")}` }
          : {}),
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };

  const backrest: RunningBackrest = {
    url,
    configFile,
    dataDir,
    pid: () => child?.pid ?? -1,
    call,
    async ok(method, body, auth) {
      const answer = await call(method, body, auth);
      if (answer.status !== 200)
        throw new Error(`Backrest ${method}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
      return answer.body;
    },
    async start() {
      const out = openSync(logFile, "a");
      // Its hooks run in its working directory, as in its image.
      // A process group of its own: kill9() ends Backrest with its restic, as systemd or its
      // container's end would.
      child = spawn(BACKREST_BIN as string, [], {
        detached: true,
        cwd: dir,
        env: {
          PATH: process.env.PATH,
          HOME: dir,
          XDG_CACHE_HOME: path.join(dir, "cache"),
          BACKREST_PORT: `127.0.0.1:${port}`,
          BACKREST_CONFIG: configFile,
          BACKREST_DATA: dataDir,
          BACKREST_RESTIC_COMMAND: BACKREST_RESTIC_BIN,
        },
        stdio: ["ignore", out, out],
      });
      const exited = once(child, "exit");
      // Slow to start on a loaded machine (it compiles SQLite's WebAssembly build at start-up).
      const deadline = Date.now() + 90_000;
      for (;;) {
        const answer = await Promise.race([
          call("GetConfig").then(
            (a) => a.status,
            () => 0,
          ),
          exited.then(() => -1),
        ]);
        if (answer === -1) throw new Error(`Backrest exited at start:\n${await backrest.log()}`);
        if (answer === 200 || answer === 401) return;
        if (Date.now() > deadline)
          throw new Error(`Backrest did not answer within 90 s:\n${await backrest.log()}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop() {
      const current = child;
      if (!current || current.exitCode !== null || current.signalCode !== null) return;
      const exited = once(current, "exit");
      current.kill("SIGTERM");
      const timer = setTimeout(() => process.kill(-(current.pid as number), "SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
      // Nothing of its group outlives it (a restic it started).
      try {
        process.kill(-(current.pid as number), "SIGKILL");
      } catch {}
    },
    async kill9() {
      const current = child;
      if (!current || current.exitCode !== null || current.signalCode !== null) return;
      const exited = once(current, "exit");
      process.kill(-(current.pid as number), "SIGKILL");
      await exited;
    },
    log: () => readFile(logFile, "utf8").catch(() => ""),
  };
  scope.defer(`stop Backrest at ${url}`, () => backrest.stop());
  await backrest.start();
  return backrest;
}

/** A minimal Backrest config as a person starts with: version 6, an instance name, auth off or users. */
export function backrestConfig(options: {
  instance?: string;
  users?: Array<Record<string, string>>;
  repos?: unknown[];
  plans?: unknown[];
}): Record<string, unknown> {
  return {
    version: 6,
    instance: options.instance ?? uniqueId("host").replaceAll("-", "_"),
    repos: options.repos ?? [],
    plans: options.plans ?? [],
    auth: options.users ? { users: options.users } : { disabled: true },
  };
}

/** A Backrest with one repository `default`, added as a person adds it in the UI (AddRepo runs restic init). */
export async function startBackrestWithRepo(
  scope: TestScope,
  options: { users?: Array<Record<string, string>>; auth?: { user: string; password: string } } = {},
): Promise<{ backrest: RunningBackrest; repoDir: string; password: string }> {
  const backrest = await startBackrest(scope, backrestConfig({ users: options.users }), {
    auth: options.auth,
  });
  const repoDir = await scope.tempDir("stowage-backrest-repo-");
  const password = "repo-secret";
  await backrest.ok("AddRepo", { repo: { id: "default", uri: repoDir, password } });
  return { backrest, repoDir, password };
}
