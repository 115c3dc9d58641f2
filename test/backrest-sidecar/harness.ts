import path from "node:path";
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

export async function sidecar(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const result = await runCli([process.execPath, CLI, ...args], { env });
  const logs = result.stderr
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { ...result, logs };
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
    /** `docker volume create` with the test's marker. */
    async volume(name: string): Promise<string> {
      const full = `${marker}_${name}`;
      await run("docker", [
        "volume",
        "create",
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
      options: { start?: boolean; command?: string[] } = {},
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
      await run("docker", [...args, image, ...(options.command ?? ["sleep", "3600"])]);
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
