import { createWriteStream } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Writable } from "node:stream";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function clfDate(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${pad(date.getUTCDate())}/${MONTHS[date.getUTCMonth()]}/${date.getUTCFullYear()}:${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}

const quoted = (value: string | undefined) => (value ? JSON.stringify(value) : '"-"');

/** One line in the Combined Log Format, as the Go server's --log writes. */
export function combinedLogLine(
  req: IncomingMessage,
  res: ServerResponse,
  user: string | undefined,
  bytes: number,
  when: Date,
): string {
  const host = req.socket.remoteAddress ?? "-";
  const request = `${req.method} ${req.url} HTTP/${req.httpVersion}`;
  return `${host} - ${user || "-"} [${clfDate(when)}] ${JSON.stringify(request)} ${res.statusCode} ${bytes} ${quoted(req.headers.referer)} ${quoted(req.headers["user-agent"])}\n`;
}

/** `--log FILE` appends to FILE, `--log -` writes to stdout. */
export function openAccessLog(target: string): Writable {
  return target === "-" ? process.stdout : createWriteStream(target, { flags: "a" });
}
