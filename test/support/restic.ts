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
