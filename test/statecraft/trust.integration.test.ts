import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { type TestScope, useScope } from "../support/scope.js";
import { alive, escapeOf, runStatecraft, statecraft, until, waitForFile } from "./harness.js";

const WATCH = path.join(import.meta.dirname, "fixtures", "watch-journals.py");

/**
 * A paths dir with one generated-file state script that logs its setup and whose cleanup takes
 * `cleanupSeconds` (as unmounting a busy filesystem or deleting a big snapshot can).
 */
async function slowCleanupLayout(scope: TestScope, cleanupSeconds: number) {
  const base = await scope.tempDir("stowage-sc-trust-");
  const pathsDir = path.join(base, "paths.d");
  await mkdir(pathsDir);
  const log = path.join(base, "log");
  // The cleanup is journaled before the setup line is logged: a test that sees the line knows
  // the run has something to tear down (killed between the two, it would have nothing).
  const script = [
    "setup_path() {",
    `    trap_exit_eval 'sleep ${cleanupSeconds}; echo "$(date +%s.%N) cleanup $RUN_ID" >> "$TRUST_LOG"'`,
    '    echo "$(date +%s.%N) setup $RUN_ID" >> "$TRUST_LOG"',
    '    echo generated > "$TARGET_DIR/marker"',
    "}",
    "",
  ].join("\n");
  await writeFile(path.join(pathsDir, `${await escapeOf("/marker")}.state.sh`), script, { mode: 0o644 });
  const env = { STATECRAFT_STATE_DIR: path.join(base, "state"), STATECRAFT_GRACE: "1", TRUST_LOG: log };
  return { base, pathsDir, log, env };
}

const times = (log: string, what: string) =>
  log
    .split("\n")
    .filter((line) => line.includes(` ${what} `))
    .map((line) => Number(line.split(" ")[0]));

describe("statecraft: the paths lock lives as long as the run (real processes)", () => {
  const scope = useScope();

  it("after kill -9 of statecraft, a next run waits until the old run has finished tearing down", async () => {
    // 3 s of cleanup: long enough that the next run starts during it, short enough that the whole
    // teardown stays well inside the next run's 10 s wait on a loaded machine (5 s once did not).
    const l = await slowCleanupLayout(scope, 3);
    const first = statecraft(["-q", "-p", l.pathsDir, "--", "sleep", "600"], l.env);
    await waitForFile(l.log);
    first.kill("SIGKILL");
    await once(first, "exit");
    // The old run's runner is still tearing down: it still holds the lock.
    const launched = Date.now() / 1000;
    const second = await runStatecraft(["-q", "-p", l.pathsDir, "--", "true"], l.env);
    expect(second.status, second.stderr).toBe(0);
    const log = await readFile(l.log, "utf8");
    const [firstSetup, secondSetup] = times(log, "setup");
    const [firstCleanup] = times(log, "cleanup");
    expect(firstSetup).toBeLessThan(firstCleanup as number);
    // The next run was started before the old one's cleanup ended, and set up only after it.
    expect(launched).toBeLessThan(firstCleanup as number);
    expect(secondSetup).toBeGreaterThanOrEqual(firstCleanup as number);
  });

  it("a run that is still there makes the next one fail as busy after its wait (exit 75), naming the lock", async () => {
    const l = await slowCleanupLayout(scope, 0);
    const first = statecraft(["-q", "-p", l.pathsDir, "--", "sleep", "600"], l.env);
    scope.defer("stop the first run", async () => {
      first.kill("SIGTERM");
      await once(first, "exit");
    });
    await waitForFile(l.log);
    const started = Date.now();
    const second = await runStatecraft(["-q", "-p", l.pathsDir, "--", "true"], l.env);
    expect(second.status).toBe(75);
    expect(second.stderr).toContain(`${l.pathsDir} is locked by another process`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_000);
  });

  it("a runner killed by SIGQUIT is reported as 128+3, like every other signal", async () => {
    const l = await slowCleanupLayout(scope, 0);
    const child = statecraft(["-q", "-p", l.pathsDir, "--", "sleep", "600"], l.env);
    await waitForFile(l.log);
    const unshare = Number((await run("pgrep", ["-P", String(child.pid), "unshare"])).stdout.trim());
    expect(alive(unshare)).toBe(true);
    process.kill(unshare, "SIGQUIT");
    const [status] = (await once(child, "exit")) as [number];
    expect(status).toBe(131);
  });
});

describe("statecraft: a journal is whole from the moment it has its name", () => {
  const scope = useScope();

  it("appears by rename with its owner line, never created in place (a --recover could read it empty)", async () => {
    const l = await slowCleanupLayout(scope, 0);
    const journalDir = path.join(l.env.STATECRAFT_STATE_DIR, "journal");
    await mkdir(journalDir, { recursive: true });
    const seen = path.join(l.base, "seen");
    const watcher = spawn("python3", [WATCH, journalDir, seen], { stdio: ["ignore", "pipe", "inherit"] });
    scope.defer("stop the watcher", async () => {
      watcher.kill("SIGKILL");
    });
    await once(watcher.stdout, "data");
    for (let i = 0; i < 3; i++) {
      const result = await runStatecraft(["-q", "-p", l.pathsDir, "--", "true"], l.env);
      expect(result.status, result.stderr).toBe(0);
    }
    await until(async () => (await readFile(seen, "utf8").catch(() => "")).split("\n").length > 3);
    const lines = (await readFile(seen, "utf8")).trim().split("\n");
    expect(lines).toHaveLength(3);
    for (const line of lines)
      expect(line).toMatch(/^[A-Za-z0-9]{10}\.journal renamed-into-place owner=True$/);
  });
});
