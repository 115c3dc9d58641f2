import type { ServerResponse } from "node:http";
import net from "node:net";
import tls from "node:tls";
import { giveBack, takeBuffer } from "./buffer-pool.js";

/**
 * Where a response head is read (and copied out of at once): shared, since a read's callback runs
 * to its end before the next read of any socket.
 */
const HEAD_SCRATCH = Buffer.allocUnsafe(16 * 1024);
const MAX_HEAD_BYTES = 64 * 1024;
/** Buffers on their way to the client before reading from the storage pauses. */
const IN_FLIGHT = 2;
/** A kept-alive connection is closed after this long unused (RGW's own limit is 65 s). */
const IDLE_MS = 15_000;
const MAX_IDLE_PER_ORIGIN = 32;

export interface UpstreamOptions {
  connectTimeoutMs: number;
  /** A connection that is silent this long during a response fails it. */
  responseTimeoutMs: number;
}

export interface UpstreamResponse {
  status: number;
  /** Header values by lower-case name. */
  headers: Map<string, string>;
  /** Content-Length; undefined when the answer has none (chunked): its body cannot be sent. */
  length: number | undefined;
  /** Write the body to `res` and end it; rejects when either side fails first. */
  send(res: ServerResponse): Promise<void>;
  /** Drop the body unread (the connection is closed). */
  discard(): void;
}

export interface Head {
  status: number;
  headers: Map<string, string>;
  keepAlive: boolean;
}

/** A response head (status line and headers, without the blank line), or undefined when it is not HTTP/1.x. */
export function parseHead(text: string): Head | undefined {
  const lines = text.split("\r\n");
  const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0] ?? "");
  if (!statusLine) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const earlier = headers.get(name);
    headers.set(name, earlier === undefined ? value : `${earlier}, ${value}`);
  }
  const connection = headers.get("connection")?.toLowerCase() ?? "";
  const keepAlive = statusLine[1] === "1" ? !connection.includes("close") : connection.includes("keep-alive");
  return { status: Number(statusLine[2]), headers, keepAlive };
}

const aborted = () => Object.assign(new Error("aborted"), { code: "ECONNRESET" });

/**
 * One connection to the storage, reading with `onread` into buffers of our own: the head through the
 * scratch buffer, the body into at most IN_FLIGHT + 1 chunk buffers that take turns (one being read
 * into while the others are on their way to the client), given back once their writes are done. So
 * nothing is allocated per chunk, which node:http (a new 64 KiB buffer for every read, to be
 * collected) cannot avoid. One response at a time: it goes back to the pool only once its last
 * write is done.
 */
class Connection {
  readonly socket: net.Socket;
  /** waiting: the head is delivered, send() not yet called; draining: all read, writes pending. */
  private phase: "idle" | "head" | "waiting" | "body" | "draining" = "idle";
  private serial = 0;
  /** The answer's head so far (copied out of the scratch buffer). */
  private head = Buffer.alloc(0);
  private gotBytes = false;
  private answered: ((response: UpstreamResponse) => void) | undefined;
  private failed: ((error: Error) => void) | undefined;
  private res: ServerResponse | undefined;
  private remaining = 0;
  private keepAlive = false;
  private paused = false;
  private done: ((error?: Error) => void) | undefined;
  private readonly buffers = new Set<Buffer>();
  private readonly busy = new Set<Buffer>();
  /** The buffer the socket's next read lands in: never given back while the socket lives. */
  private target: Buffer = HEAD_SCRATCH;
  private broken: Error | undefined;
  /** Connected (and the TLS handshake done): from then on the response timeout applies. */
  private ready = false;

  constructor(
    readonly origin: string,
    url: URL,
    private readonly options: UpstreamOptions,
    private readonly release: (connection: Connection) => void,
  ) {
    const onread = { buffer: () => this.nextBuffer(), callback: (n: number, b: Buffer) => this.onRead(n, b) };
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    const host = url.hostname.replace(/^\[|\]$/g, "");
    // tls.connect takes onread as net.connect does (its types do not say so).
    const secure: tls.ConnectionOptions & { onread: net.OnReadOpts } = {
      host,
      port,
      ...(net.isIP(host) ? {} : { servername: host }),
      onread,
    };
    this.socket = url.protocol === "https:" ? tls.connect(secure) : net.connect({ host, port, onread });
    this.socket.setNoDelay(true);
    this.socket.setTimeout(options.connectTimeoutMs);
    this.socket.once(url.protocol === "https:" ? "secureConnect" : "connect", () => {
      this.ready = true;
      this.socket.setTimeout(this.phase === "idle" ? IDLE_MS : options.responseTimeoutMs);
    });
    this.socket.on("timeout", () => this.socket.destroy(new Error(`no answer from ${origin} in time`)));
    this.socket.on("error", (error) => this.fail(error));
    this.socket.on("close", () => this.fail(new Error(`${origin} closed the connection`)));
  }

  /** Whether it failed before a byte of the answer came. */
  get silent(): boolean {
    return !this.gotBytes;
  }

  /** Send a request; resolves with its answer's head. */
  request(target: string, host: string, range: string | undefined): Promise<UpstreamResponse> {
    this.gotBytes = false;
    if (this.broken) return Promise.reject(this.broken);
    this.serial++;
    this.phase = "head";
    this.head = Buffer.alloc(0);
    this.socket.ref();
    if (this.ready) this.socket.setTimeout(this.options.responseTimeoutMs);
    const promise = new Promise<UpstreamResponse>((resolve, reject) => {
      this.answered = (response) => resolve(response);
      this.failed = reject;
    });
    this.socket.write(
      `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: stowage-rest-server\r\n${range ? `Range: ${range}\r\n` : ""}\r\n`,
    );
    if (this.paused) this.resumeReading();
    return promise;
  }

  private nextBuffer(): Buffer {
    this.target = this.pickBuffer();
    return this.target;
  }

  private pickBuffer(): Buffer {
    if (this.phase !== "waiting" && this.phase !== "body") return HEAD_SCRATCH;
    for (const buffer of this.buffers) if (!this.busy.has(buffer)) return buffer;
    const buffer = takeBuffer();
    this.buffers.add(buffer);
    return buffer;
  }

  private onRead(bytes: number, buffer: Buffer): boolean {
    this.gotBytes = true;
    if (this.phase === "head") return this.readHead(buffer.subarray(0, bytes));
    if (this.phase === "body") return this.readBody(buffer, bytes);
    // Bytes nobody asked for: the connection cannot be trusted.
    this.socket.destroy(new Error(`${this.origin} sent more than its answer`));
    return false;
  }

  private readHead(bytes: Buffer): boolean {
    const all = Buffer.concat([this.head, bytes]);
    const end = all.indexOf("\r\n\r\n");
    if (end < 0) {
      this.head = all;
      if (all.length > MAX_HEAD_BYTES) this.socket.destroy(new Error(`${this.origin}: answer head too long`));
      return true;
    }
    this.head = Buffer.alloc(0);
    const head = parseHead(all.subarray(0, end).toString("latin1"));
    if (!head) {
      this.socket.destroy(new Error(`${this.origin}: not an HTTP/1.1 answer`));
      return false;
    }
    const lengthText = head.headers.get("content-length");
    const length =
      lengthText !== undefined && /^\d+$/.test(lengthText) && !head.headers.has("transfer-encoding")
        ? Number(lengthText)
        : undefined;
    const start = all.subarray(end + 4);
    if (length !== undefined && start.length > length) {
      this.socket.destroy(new Error(`${this.origin} sent more than its Content-Length`));
      return false;
    }
    this.keepAlive = head.keepAlive && length !== undefined;
    this.remaining = length ?? 0;
    this.phase = "waiting";
    this.paused = true;
    const answered = this.answered;
    this.answered = undefined;
    this.failed = undefined;
    const serial = this.serial;
    answered?.({
      status: head.status,
      headers: head.headers,
      length,
      send: (res) => this.send(res, start),
      discard: () => {
        // Only this response's own connection, and only while its body is unread.
        if (this.serial === serial && this.phase === "waiting") this.socket.destroy();
      },
    });
    return false;
  }

  private send(res: ServerResponse, start: Buffer): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    this.res = res;
    const finished = new Promise<void>((resolve, reject) => {
      this.done = (error) => (error ? reject(error) : resolve());
    });
    res.once("close", this.onClientClose);
    this.phase = "body";
    if (start.length > 0) {
      this.remaining -= start.length;
      this.write(start, undefined);
    }
    if (this.remaining === 0) this.phase = "draining";
    else this.resumeReading();
    this.settleIfDrained();
    return finished;
  }

  /** The client went away (or a write to it failed): the response is over now (buffers still in writes come back later). */
  private readonly onClientClose = () => {
    const done = this.done;
    if (!done) return;
    this.done = undefined;
    this.res = undefined;
    this.socket.destroy();
    done(aborted());
  };

  private readBody(buffer: Buffer, bytes: number): boolean {
    if (bytes > this.remaining) {
      this.socket.destroy(new Error(`${this.origin} sent more than its Content-Length`));
      return false;
    }
    this.remaining -= bytes;
    this.busy.add(buffer);
    this.write(buffer.subarray(0, bytes), buffer);
    if (this.remaining === 0) {
      this.phase = "draining";
      return true;
    }
    if (this.busy.size >= IN_FLIGHT) {
      this.paused = true;
      return false;
    }
    return true;
  }

  private write(chunk: Buffer, buffer: Buffer | undefined): void {
    (this.res as ServerResponse).write(chunk, (error) => {
      if (buffer) this.busy.delete(buffer);
      if (error) this.onClientClose();
      else if (this.phase === "body" && this.paused && this.busy.size < IN_FLIGHT) this.resumeReading();
      this.settleIfDrained();
      if (this.socket.destroyed) this.giveBackUnused();
    });
  }

  /** The whole body is read and written: end the response, then serve the next request. */
  private settleIfDrained(): void {
    if (this.phase !== "draining" || this.busy.size > 0 || !this.done) return;
    this.phase = "idle";
    this.socket.setTimeout(IDLE_MS);
    this.res?.off("close", this.onClientClose);
    this.res?.end();
    this.res = undefined;
    this.giveBackUnused();
    const done = this.done;
    this.done = undefined;
    done();
    if (this.keepAlive && !this.broken) this.release(this);
    else if (!this.socket.destroyed) this.socket.end();
  }

  /** Buffers no write and no read can touch any more go back to the pool. */
  private giveBackUnused(): void {
    const alive = !this.socket.destroyed;
    for (const buffer of this.buffers) {
      if (this.busy.has(buffer) || (alive && buffer === this.target)) continue;
      this.buffers.delete(buffer);
      giveBack(buffer);
    }
  }

  private resumeReading(): void {
    this.paused = false;
    this.socket.resume();
  }

  private fail(error: Error): void {
    this.broken ??= error;
    const failed = this.failed;
    this.answered = undefined;
    this.failed = undefined;
    failed?.(error);
    // All of the body read (the storage may close after it): the response ends once written.
    if (this.phase !== "draining") {
      const done = this.done;
      this.done = undefined;
      if (done) {
        this.res?.off("close", this.onClientClose);
        this.res = undefined;
        done(error);
      }
      this.phase = "idle";
    }
    this.giveBackUnused();
  }
}

/**
 * GETs of signed URLs (the SDK signs; the URL carries the signature), each on a kept-alive
 * connection to its origin, the body written to a response as it arrives.
 */
export class UpstreamPool {
  private readonly idle = new Map<string, Connection[]>();

  constructor(private readonly options: UpstreamOptions) {}

  async get(url: URL, range: string | undefined): Promise<UpstreamResponse> {
    const target = `${url.pathname}${url.search}`;
    const kept = this.takeIdle(url.origin);
    if (kept) {
      try {
        return await kept.request(target, url.host, range);
      } catch (error) {
        // The storage closed the kept connection as we sent on it: once more on a new one.
        if (!kept.silent) throw error;
      }
    }
    return this.connect(url).request(target, url.host, range);
  }

  private connect(url: URL): Connection {
    const connection = new Connection(url.origin, url, this.options, (kept) => this.keep(kept));
    connection.socket.once("close", () => {
      const list = this.idle.get(connection.origin);
      const at = list?.indexOf(connection) ?? -1;
      if (list && at >= 0) list.splice(at, 1);
    });
    return connection;
  }

  private takeIdle(origin: string): Connection | undefined {
    const list = this.idle.get(origin);
    while (list && list.length > 0) {
      const connection = list.pop() as Connection;
      if (!connection.socket.destroyed) return connection;
    }
    return undefined;
  }

  private keep(connection: Connection): void {
    const list = this.idle.get(connection.origin) ?? [];
    this.idle.set(connection.origin, list);
    if (list.length >= MAX_IDLE_PER_ORIGIN) {
      connection.socket.end();
      return;
    }
    list.push(connection);
    // A kept connection does not keep the process alive.
    connection.socket.unref();
  }

  /** Close every kept connection (at shutdown). */
  close(): void {
    for (const list of this.idle.values()) for (const connection of list) connection.socket.destroy();
    this.idle.clear();
  }
}
