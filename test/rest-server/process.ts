import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import type { TestScope } from "../support/scope.js";

export const CLI = path.resolve(import.meta.dirname, "../../dist/cli/rest-server.js");

export interface Captured {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  /** The exit status, or the signal's name. */
  exited: Promise<number | string>;
}

/** Start a program with its output captured. */
export function spawnCaptured(argv: readonly string[], env: NodeJS.ProcessEnv = {}): Captured {
  const child = spawn(argv[0] as string, argv.slice(1), {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const collect = (chunk: Buffer) => {
    out += chunk.toString();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = once(child, "exit").then(([code, signal]) => (code ?? signal) as number | string);
  return { child, output: () => out, exited };
}

/** Poll the output until `pattern` appears; its first group (or the whole match) is returned. */
export async function waitForOutput(
  captured: Captured,
  pattern: RegExp,
  timeoutMs = 15_000,
): Promise<string> {
  let done = false;
  captured.exited.then(() => {
    done = true;
  });
  for (const deadline = Date.now() + timeoutMs; ; ) {
    const match = pattern.exec(captured.output());
    if (match) return match[1] ?? match[0];
    if (done) throw new Error(`exited before printing ${pattern}:\n${captured.output()}`);
    if (Date.now() > deadline) throw new Error(`did not print ${pattern} in time:\n${captured.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export interface ServerProcess extends Captured {
  url: string;
  /** Send a signal and wait for the exit status (or signal name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** The built `rest-server` command as a separate process; resolves once it prints its address. */
export async function spawnServer(
  scope: TestScope,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  launcher: readonly string[] = [],
): Promise<ServerProcess> {
  const captured = spawnCaptured([...launcher, process.execPath, CLI, ...args], env);
  const { child, exited } = captured;
  scope.defer("kill rest-server", async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  });
  const url = launcher.length > 0 ? "" : await waitForOutput(captured, /rest-server listening on (\S+)/);
  return {
    ...captured,
    url,
    async stop(signal = "SIGTERM") {
      child.kill(signal);
      return exited;
    },
  };
}

/** Run the command to completion (for start-up failures). */
export async function runServerToExit(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ status: number | string; output: string }> {
  const captured = spawnCaptured([process.execPath, CLI, ...args], env);
  return { status: await captured.exited, output: captured.output() };
}
