import path from "node:path";
import { type ExecResult, run } from "../../src/system/exec.js";
import type { TestScope } from "./scope.js";

export interface ResticClient {
  /** Run the real restic client against the repository; throws with restic's stderr on failure. */
  run(
    args: readonly string[],
    options?: { okStatuses?: number[]; env?: NodeJS.ProcessEnv },
  ): Promise<ExecResult>;
  /** Same, with `--json`, parsed. */
  json<T>(args: readonly string[]): Promise<T>;
  repository: string;
}

/** A restic client bound to one repository with its own password and a throwaway cache dir. */
export async function resticClient(
  scope: TestScope,
  repository: string,
  options: { password?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ResticClient> {
  const cacheDir = await scope.tempDir("stowage-restic-cache-");
  const env = {
    ...process.env,
    RESTIC_REPOSITORY: repository,
    RESTIC_PASSWORD: options.password ?? "stowage-test-password",
    RESTIC_CACHE_DIR: cacheDir,
    ...options.env,
  };
  const client: ResticClient = {
    repository,
    run: (args, runOptions = {}) =>
      run("restic", args, {
        env: { ...env, ...runOptions.env },
        ...(runOptions.okStatuses ? { okStatuses: runOptions.okStatuses } : {}),
      }),
    json: async <T>(args: readonly string[]) =>
      JSON.parse((await client.run([...args, "--json"])).stdout) as T,
  };
  return client;
}

/**
 * Restore the latest snapshot into a new temp dir and compare it with `diff -r` to `source` (an
 * absolute path, which restic restores under the target): the differences, "" when there are none.
 */
export async function restoredDiff(scope: TestScope, restic: ResticClient, source: string): Promise<string> {
  const target = await scope.tempDir("stowage-restored-");
  await restic.run(["restore", "latest", "--target", target]);
  return (await run("diff", ["-r", source, path.join(target, source)], { okStatuses: [0, 1] })).stdout;
}
