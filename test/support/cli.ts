import { spawn } from "node:child_process";
import { once } from "node:events";

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to its end as a user would, its output captured. */
export async function runCli(
  argv: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CliResult> {
  const child = spawn(argv[0] as string, argv.slice(1), {
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [status] = (await once(child, "exit")) as [number | null];
  return { status, stdout, stderr };
}
