import { mkdir } from "node:fs/promises";
import path from "node:path";
import { readMountinfo } from "../../src/system/mountinfo.js";
import { type CliResult, runCli } from "../support/cli.js";
import type { TestScope } from "../support/scope.js";

export const CLI = path.resolve(import.meta.dirname, "../../dist/cli/wafers.js");

export interface Roots {
  base: string;
  wafers: string;
  stacks: string;
  env: NodeJS.ProcessEnv;
}

/** Fresh $WAFERS and $STACKS; every mount left under them is taken down after the test. */
export async function wafersRoots(scope: TestScope): Promise<Roots> {
  const base = await scope.tempDir("stowage-wafers-");
  const wafers = path.join(base, "wafers");
  const stacks = path.join(base, "machines");
  await mkdir(wafers);
  scope.defer(`unmount everything under ${base}`, async () => {
    const mounts = (await readMountinfo()).filter((m) => m.mountPoint.startsWith(`${base}/`));
    for (const mount of mounts.reverse()) await runWafersRaw(["umount", "-l", mount.mountPoint], {}, true);
  });
  return { base, wafers, stacks, env: { WAFERS: wafers, STACKS: stacks } };
}

export type Result = CliResult;

async function runWafersRaw(
  argv: string[],
  env: NodeJS.ProcessEnv,
  raw = false,
  cwd?: string,
): Promise<Result> {
  return runCli(raw ? argv : [process.execPath, CLI, ...argv], { env, ...(cwd ? { cwd } : {}) });
}

/** The built `wafers` command, as a user runs it. */
export function wafers(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<Result> {
  return runWafersRaw(args, env, false, cwd);
}

/** Mount points under a directory, from the kernel's table. */
export async function mountsUnder(dir: string): Promise<string[]> {
  return (await readMountinfo()).filter((m) => m.mountPoint.startsWith(`${dir}/`)).map((m) => m.mountPoint);
}
