import { expect } from "vitest";
import { run } from "../../src/system/exec.js";
import { freePort, type TestScope } from "../support/scope.js";
import { request } from "./fixture.js";
import { CLI, type ServerProcess, spawnServer } from "./process.js";

/** Our server (--no-auth unless `users`, metrics open) with `storage` flags and a mirror, and `extra` flags. */
export async function mirroredServer(
  scope: TestScope,
  storage: readonly string[],
  mirror: readonly string[],
  options: { extra?: string[]; env?: NodeJS.ProcessEnv; path?: string; users?: boolean } = {},
): Promise<ServerProcess> {
  return spawnServer(
    scope,
    [
      ...storage,
      ...mirror,
      "--path",
      options.path ?? (await scope.tempDir("stowage-mirror-path-")),
      ...(options.users ? [] : ["--no-auth"]),
      "--prometheus",
      "--prometheus-no-auth",
      "--listen",
      `127.0.0.1:${await freePort()}`,
      ...(options.extra ?? []),
    ],
    options.env ?? {},
  );
}

/** A gauge or counter of /metrics (summed over its labels), 0 when absent. */
export async function metric(url: string, name: string): Promise<number> {
  const text = (await request(url, "/metrics")).body.toString();
  let sum = 0;
  for (const line of text.split("\n"))
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(" ").at(-1));
  return sum;
}

/** Wait until the mirror queue is empty. */
export async function mirrored(url: string, timeoutMs = 90_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    if ((await metric(url, "rest_server_mirror_queue_objects")) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the mirror queue of ${url} did not empty within ${timeoutMs} ms`);
}

/** A tree of `megabytes` of random bytes (head(1) from /dev/urandom) plus small files. */
export async function randomTree(scope: TestScope, megabytes: number): Promise<string> {
  const dir = await scope.tempDir("stowage-mirror-tree-");
  await addRandom(dir, "first", megabytes);
  return dir;
}

/** Add a file of random bytes and a few small ones under `dir/name`. */
export async function addRandom(dir: string, name: string, megabytes: number): Promise<void> {
  await run("sh", [
    "-c",
    `mkdir -p "$1/$2" && head -c $(($3 * 1048576)) /dev/urandom > "$1/$2/big" && for i in 1 2 3 4 5 6 7 8; do head -c 3000 /dev/urandom > "$1/$2/small-$i"; done`,
    "sh",
    dir,
    name,
    String(megabytes),
  ]);
}

/** `rest-server mirror-verify` (or another task) to its end: status and output. */
export async function task(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  const result = await run(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    okStatuses: [0, 1, 2],
  });
  return result;
}

/** mirror-verify --read-data is clean. */
export async function verifiedClean(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  const verify = await task(["mirror-verify", "--read-data", ...args], env);
  expect(verify.stderr).toBe("");
  expect(verify.stdout).toMatch(/ 0 differ on the mirror /);
  expect(verify.status).toBe(0);
}
