import { createRequire } from "node:module";
import { destination, type Logger, type LoggerOptions, pino } from "pino";
import type PinoPretty from "pino-pretty";

export type { Logger } from "pino";

export interface LogOptions {
  /** Tool name, written as `name` on every line. */
  name: string;
  level?: string;
  /** Human-readable lines instead of JSON; default: when stderr is a terminal. */
  pretty?: boolean;
  /** Where to write; default stderr (stdout stays free for a command's own output). */
  fd?: number;
}

/**
 * Structured JSON logs (`level` as a word, `time`, `name`, `msg`, and fields such as `action`), or
 * a readable form when a person is watching. Synchronous so nothing is lost when a command exits.
 */
export function createLogger(options: LogOptions): Logger {
  const fd = options.fd ?? 2;
  const config: LoggerOptions = {
    name: options.name,
    level: options.level ?? process.env.STOWAGE_LOG_LEVEL ?? "info",
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  const wantPretty = options.pretty ?? (fd === 2 ? process.stderr.isTTY : process.stdout.isTTY);
  // The self-contained executable has no module URL and does not carry pino-pretty: JSON there.
  if (wantPretty && typeof import.meta.url === "string") {
    // Loaded only for a terminal: long-running servers log JSON and need not carry it.
    const pretty = createRequire(import.meta.url)("pino-pretty") as typeof PinoPretty;
    return pino(config, pretty({ destination: fd, sync: true, colorize: true, ignore: "pid,hostname" }));
  }
  return pino(config, destination({ fd, sync: true }));
}
