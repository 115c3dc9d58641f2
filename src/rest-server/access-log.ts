import { createWriteStream } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Writable } from "node:stream";
import { ConfigError } from "../system/errors.js";
import type { Logger } from "../system/log.js";

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

/** Where access log lines go; never throws and never takes the server down. */
export interface AccessLog {
  write(line: string): void;
}

/**
 * `--log FILE` appends to FILE, `--log -` writes to stdout. The file is opened before the server
 * listens, so a path that cannot be written fails the start with one line naming it. A write that
 * fails later (a full or vanished disk, a closed stdout) is one warning, then the access log is
 * dropped and serving goes on: a request never fails because of its log line.
 */
export async function openAccessLog(target: string, log: Logger): Promise<AccessLog> {
  let sink: Writable;
  if (target === "-") {
    sink = process.stdout;
  } else {
    let handle: FileHandle;
    try {
      handle = await open(target, "a", 0o640);
    } catch (error) {
      throw new ConfigError(`--log ${target}: cannot open it for appending: ${(error as Error).message}`);
    }
    sink = createWriteStream(target, { fd: handle });
  }
  let failed = false;
  const fail = (error: Error) => {
    if (failed) return;
    failed = true;
    log.warn(
      { action: "access-log.failed", file: target, err: error.message },
      "cannot write the access log; it is dropped from now on, serving goes on",
    );
    if (sink !== process.stdout) sink.destroy();
  };
  sink.on("error", fail);
  return {
    write(line) {
      if (failed) return;
      try {
        sink.write(line);
      } catch (error) {
        fail(error as Error);
      }
    },
  };
}
