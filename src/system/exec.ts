import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { StowageError } from "./errors.js";
import { formatCommand } from "./shell-quote.js";

/** Default bound on captured stdout: a tool that prints more fails the call (never a silent cut). */
const MAX_STDOUT_BYTES = 16 * 1024 * 1024;
/** stderr is only ever a message: its first bytes are kept, and a note says what was dropped. */
const MAX_STDERR_BYTES = 1024 * 1024;

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Standard input: text, bytes, or a stream of chunks written as they come (never built whole). */
  input?: string | Buffer | AsyncIterable<Buffer>;
  /** Print `+ command args` to stderr (true) or to the given sink before running. */
  trace?: boolean | ((line: string) => void);
  /** Exit statuses that count as success; default only 0. */
  okStatuses?: readonly number[];
  timeoutMs?: number;
  /** Open descriptors of ours the child gets as its fd 3, 4, ... (others are close-on-exec). */
  fds?: readonly number[];
  /** Aborting signals the child (`stopSignal`) and, once it has exited, rejects with the reason. */
  signal?: AbortSignal;
  /** What an abort sends (default SIGTERM; restic 0.14 cleans up its lock only on SIGINT). */
  stopSignal?: NodeJS.Signals;
  /** stdout is handed over chunk by chunk instead of being captured (`stdout` is then ""). */
  onStdout?: (chunk: Buffer) => void;
  /** stdout is piped into this stream (its backpressure pauses the child; it is ended after). */
  stdoutTo?: NodeJS.WritableStream;
  /** stderr is handed over chunk by chunk instead of being captured (`stderr` is then ""). */
  onStderr?: (chunk: Buffer) => void;
  /** Most bytes of stdout to capture (default 16 MiB); more fails the call with an error naming it. */
  maxStdoutBytes?: number;
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
  size = 0;
  dropped = 0;
  constructor(private readonly limit: number) {}
  /** False once the limit is passed (what is beyond it is not kept). */
  push(chunk: Buffer): boolean {
    if (this.size + chunk.length > this.limit) {
      const room = this.limit - this.size;
      if (room > 0) this.chunks.push(chunk.subarray(0, room));
      this.size += Math.max(room, 0);
      this.dropped += chunk.length - Math.max(room, 0);
      return false;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    return true;
  }
  text(): string {
    const text = Buffer.concat(this.chunks).toString("utf8");
    return this.dropped > 0 ? `${text}\n[${this.dropped} more bytes not shown]` : text;
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
  const stdoutLimit = options.maxStdoutBytes ?? MAX_STDOUT_BYTES;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(options.signal.reason);
      return;
    }
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe", ...(options.fds ?? [])],
      timeout: options.timeoutMs,
    }) as ChildProcessWithoutNullStreams;
    const stdout = new Capture(stdoutLimit);
    const stderr = new Capture(MAX_STDERR_BYTES);
    let spawnError: NodeJS.ErrnoException | undefined;
    let overflow = false;
    const onAbort = () => child.kill(options.stopSignal ?? "SIGTERM");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.stdoutTo) child.stdout.pipe(options.stdoutTo);
    else
      child.stdout.on("data", (chunk: Buffer) => {
        if (options.onStdout) options.onStdout(chunk);
        else if (!stdout.push(chunk) && !overflow) {
          overflow = true;
          child.kill("SIGTERM");
        }
      });
    child.stderr.on("data", (chunk: Buffer) => {
      if (options.onStderr) options.onStderr(chunk);
      else stderr.push(chunk);
    });
    child.on("error", (error: NodeJS.ErrnoException) => {
      spawnError = error;
    });
    child.stdin.on("error", () => {
      // The child may exit without reading its input; its exit status tells what happened.
    });
    const input = options.input ?? "";
    if (typeof input === "string" || Buffer.isBuffer(input)) child.stdin.end(input);
    else pipeline(Readable.from(input), child.stdin).catch(() => {});
    child.on("close", (status, signal) => {
      options.signal?.removeEventListener("abort", onAbort);
      const result = { stdout: stdout.text(), stderr: stderr.text() };
      if (options.signal?.aborted) {
        reject(options.signal.reason);
        return;
      }
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
      if (overflow) {
        reject(
          new ExecError({
            command,
            args,
            status,
            signal,
            ...result,
            stderr: `printed more than ${stdoutLimit} bytes, the most this call reads; stopped it rather than lose the rest`,
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
