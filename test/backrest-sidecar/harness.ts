import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll } from "vitest";
import { run } from "../../src/system/exec.js";
import { type CliResult, runCli } from "../support/cli.js";
import { ensureTestImage, TEST_LABEL } from "../support/docker.js";
import { resticClient } from "../support/restic.js";
import { type TestScope, uniqueId } from "../support/scope.js";

export const CLI = path.resolve(import.meta.dirname, "../../dist/cli/backrest-sidecar.js");

export interface Result extends CliResult {
  /** stderr's JSON log lines. */
  logs: Array<Record<string, unknown>>;
}

/**
 * A state dir of this test file's own (journals, locks of backup-once): never the host's
 * /var/lib/backrest-sidecar. Removed after the file's tests.
 */
const STATE_DIR = mkdtempSync(path.join(os.tmpdir(), "stowage-sidecar-state-"));
afterAll(() => rmSync(STATE_DIR, { recursive: true, force: true }));

/** The environment every sidecar of a test runs with (its state dir). */
export const SIDECAR_ENV: NodeJS.ProcessEnv = { BACKREST_SIDECAR_STATE_DIR: STATE_DIR };

export async function sidecar(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const result = await runCli([process.execPath, CLI, ...args], { env: { ...SIDECAR_ENV, ...env } });
  const logs = result.stderr
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { ...result, logs };
}

/** The sidecar as a user runs it, its JSON log lines handed over as they come. */
export function startSidecar(
  args: string[],
  env: NodeJS.ProcessEnv,
  onLog: (line: Record<string, unknown>) => void,
  options: { detached?: boolean } = {},
) {
  // detached: a process group of its own, which a test can kill -9 as a whole (as systemd does).
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...SIDECAR_ENV, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached ?? false,
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    const before = stderr.length;
    stderr += chunk;
    for (const line of stderr
      .slice(stderr.lastIndexOf("\n", before) + 1)
      .split("\n")
      .slice(0, -1))
      if (line.startsWith("{")) onLog(JSON.parse(line) as Record<string, unknown>);
  });
  const output = once(child, "exit").then(([status]) => ({
    status: status as number | null,
    stdout,
    stderr,
  }));
  return Object.assign(child, { output });
}

/**
 * One test's world on the shared engine: a unique marker label that every container of the test
 * carries and the sidecar is scoped to (`--only-label`), so labelled containers of other tests or
 * of the host never show up in its plans.
 */
export async function world(scope: TestScope) {
  const image = await ensureTestImage(scope);
  const marker = uniqueId("sidecar");
  const only = ["--only-label", `io.stowage.test.world=${marker}`];
  const created: string[] = [];
  scope.defer("remove the test's containers and volumes", async () => {
    for (const name of created) await run("docker", ["rm", "-f", "-v", name], { okStatuses: [0, 1] });
    const volumes = (
      await run("docker", ["volume", "ls", "-q", "--filter", `label=io.stowage.test.world=${marker}`])
    ).stdout.trim();
    for (const volume of volumes.split("\n").filter(Boolean))
      await run("docker", ["volume", "rm", "-f", volume]);
  });
  return {
    marker,
    only,
    /** `docker volume create` with the test's marker; `bindTo`: a local-driver volume binding that directory. */
    async volume(name: string, bindTo?: string): Promise<string> {
      const full = `${marker}_${name}`;
      const bind = bindTo ? ["--opt", "type=none", "--opt", "o=bind", "--opt", `device=${bindTo}`] : [];
      await run("docker", [
        "volume",
        "create",
        ...bind,
        "--label",
        `io.stowage.test.world=${marker}`,
        "--label",
        TEST_LABEL,
        full,
      ]);
      return full;
    },
    /** `docker create` (or `run -d` when `start`) with labels and -v mounts, as compose would make it. */
    async container(
      name: string,
      labels: Record<string, string>,
      mounts: string[],
      options: {
        start?: boolean;
        command?: string[];
        image?: string;
        /** Settings for the container, handed to the docker CLI by name (`-e KEY`): no value on a command line. */
        env?: Record<string, string>;
      } = {},
    ): Promise<string> {
      const full = `${marker}-${name}`;
      const args = [
        options.start ? "run" : "create",
        ...(options.start ? ["-d"] : []),
        "--name",
        full,
        "--network",
        "none",
      ];
      args.push("--label", TEST_LABEL, "--label", `io.stowage.test.world=${marker}`);
      for (const [key, value] of Object.entries(labels)) args.push("--label", `${key}=${value}`);
      for (const mount of mounts) args.push("-v", mount);
      for (const key of Object.keys(options.env ?? {})) args.push("-e", key);
      await run(
        "docker",
        [...args, options.image ?? image, ...(options.command ?? (options.image ? [] : ["sleep", "3600"]))],
        {
          env: { ...process.env, ...options.env },
        },
      );
      created.push(full);
      return full;
    },
    async remove(name: string): Promise<void> {
      await run("docker", ["rm", "-f", name]);
    },
  };
}

/** Replace a test's unique names so a golden file can be compared. */
export function generic(text: string, marker: string, dir: string): string {
  return text.replaceAll(marker, "WORLD").replaceAll(dir, "DIR");
}

/** A fresh restic repository (password "pw") and the RESTIC_* environment backup-once needs. */
export async function resticRepository(scope: TestScope) {
  const repoDir = await scope.tempDir("stowage-sidecar-repo-");
  const env = {
    RESTIC_REPOSITORY: repoDir,
    RESTIC_PASSWORD: "pw",
    RESTIC_CACHE_DIR: path.join(repoDir, ".cache"),
  };
  const restic = await resticClient(scope, repoDir, { password: "pw" });
  await restic.run(["init"]);
  return { env, restic, repoDir };
}

/** Files in a named volume, written by a container as an application would. */
export async function fillVolume(volume: string, script: string): Promise<void> {
  await run("docker", [
    "run",
    "--rm",
    "--network",
    "none",
    "-v",
    `${volume}:/data`,
    "stowage-test/busybox:1",
    "sh",
    "-c",
    script,
  ]);
}

/** An env file (docker --env-file syntax, 0600) for backup-once and restore to reach this repository. */
export async function resticEnvFile(scope: TestScope, repository: string, password: string): Promise<string> {
  const dir = await scope.tempDir("stowage-sidecar-env-");
  const file = path.join(dir, "restic.env");
  await writeFile(
    file,
    `RESTIC_REPOSITORY=${repository}\nRESTIC_PASSWORD=${password}\nRESTIC_CACHE_DIR=${dir}/cache\n`,
    {
      mode: 0o600,
    },
  );
  return file;
}
