import { spawn } from "node:child_process";
import { StowageError } from "./errors.js";
import { formatCommand } from "./shell-quote.js";

/** Cap on captured stdout/stderr so a chatty tool cannot exhaust memory. */
const MAX_CAPTURE_BYTES = 16 * 1024 * 1024;

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  /** Print `+ command args` to stderr (true) or to the given sink before running. */
  trace?: boolean | ((line: string) => void);
  /** Exit statuses that count as success; default only 0. */
  okStatuses?: readonly number[];
  timeoutMs?: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  status: number;
}

/** An external program failed to start, exited non-zero or was killed. */
export class ExecError extends StowageError {
  readonly command: string;
  readonly args: readonly string[];
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;

  constructor(fields: {
    command: string;
    args: readonly string[];
    status: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
    notFound?: boolean;
    cause?: unknown;
  }) {
    const shown = formatCommand(fields.command, fields.args);
    const reason = fields.notFound
      ? "command not found"
      : fields.signal
        ? `killed by ${fields.signal}`
        : `exit status ${fields.status}`;
    const detail = fields.stderr.trim();
    super(
      fields.notFound ? "COMMAND_NOT_FOUND" : "EXEC_FAILED",
      `${shown}: ${reason}${detail ? `: ${detail}` : ""}`,
      { cause: fields.cause },
    );
    this.command = fields.command;
    this.args = fields.args;
    this.status = fields.status;
    this.signal = fields.signal;
    this.stdout = fields.stdout;
    this.stderr = fields.stderr;
  }
}

class Capture {
  private chunks: Buffer[] = [];
  private size = 0;
  push(chunk: Buffer): void {
    if (this.size >= MAX_CAPTURE_BYTES) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

function emitTrace(trace: ExecOptions["trace"], command: string, args: readonly string[]): void {
  if (!trace) return;
  const line = `+ ${formatCommand(command, args)}`;
  if (typeof trace === "function") trace(line);
  else process.stderr.write(`${line}\n`);
}

/** Run a program with an argument array (never through a shell) and capture its output. */
export function run(
  command: string,
  args: readonly string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  emitTrace(options.trace, command, args);
  const okStatuses = options.okStatuses ?? [0];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
      timeout: options.timeoutMs,
    });
    const stdout = new Capture();
    const stderr = new Capture();
    let spawnError: NodeJS.ErrnoException | undefined;
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", (error: NodeJS.ErrnoException) => {
      spawnError = error;
    });
    child.stdin.on("error", () => {
      // The child may exit without reading its input; its exit status tells what happened.
    });
    child.stdin.end(options.input ?? "");
    child.on("close", (status, signal) => {
      const result = { stdout: stdout.text(), stderr: stderr.text() };
      if (spawnError) {
        reject(
          new ExecError({
            command,
            args,
            status: null,
            signal: null,
            ...result,
            notFound: spawnError.code === "ENOENT",
            stderr: spawnError.message,
            cause: spawnError,
          }),
        );
        return;
      }
      if (status !== null && okStatuses.includes(status)) {
        resolve({ ...result, status });
        return;
      }
      reject(new ExecError({ command, args, status, signal, ...result }));
    });
  });
}
