import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import type { TestScope } from "../support/scope.js";

const CLI = path.resolve(import.meta.dirname, "../../dist/cli/rest-server.js");

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  output(): string;
  /** Send a signal and wait for the exit status (or signal name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** The built `rest-server` command as a separate process; resolves once it prints its address. */
export async function spawnServer(
  scope: TestScope,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<ServerProcess> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  const exited = once(child, "exit").then(([code, signal]) => (code ?? signal) as number | string);
  scope.defer("kill rest-server", async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`rest-server did not start:\n${out}`)), 15_000);
    const check = () => {
      const match = /rest-server listening on (\S+)/.exec(out);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on("data", check);
    exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`rest-server exited before listening (${child.exitCode}):\n${out}`));
    });
  });
  return {
    child,
    url,
    output: () => out,
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
): Promise<{ status: number | null; output: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const [status] = (await once(child, "exit")) as [number | null];
  return { status, output };
}
