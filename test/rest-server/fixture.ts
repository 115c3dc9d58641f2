import { createHash } from "node:crypto";
import http from "node:http";
import net from "node:net";
import { type RunningServer, type ServerOptions, startServer } from "../../src/rest-server/server.js";
import { createLogger } from "../../src/system/log.js";
import type { TestScope } from "../support/scope.js";

export const V2 = "application/vnd.x.restic.rest.v2";

export function sha256(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

export function defaultOptions(root: string): ServerOptions {
  return {
    path: root,
    storage: undefined,
    s3Endpoint: undefined,
    s3RedirectReads: undefined,
    mirror: undefined,
    instances: 1,
    usageRefreshMs: 0,
    listen: "127.0.0.1:0",
    noAuth: true,
    htpasswdFile: undefined,
    proxyAuthUsername: undefined,
    privateRepos: false,
    appendOnly: false,
    maintenanceUser: undefined,
    maintain: undefined,
    maxSize: undefined,
    quotaFile: undefined,
    prometheus: false,
    prometheusNoAuth: false,
    tls: false,
    tlsCert: undefined,
    tlsKey: undefined,
    tlsMinVer: "1.2",
    log: undefined,
    noVerifyUpload: false,
    groupAccessibleRepos: false,
    shutdownGraceMs: 5_000,
  };
}

export interface TestServer {
  server: RunningServer;
  root: string;
  url: string;
}

/** Our server in this process, on a free loopback port, over a fresh temp directory. */
export async function startTestServer(
  scope: TestScope,
  overrides: Partial<ServerOptions> = {},
): Promise<TestServer> {
  const root = overrides.path ?? (await scope.tempDir("stowage-rest-"));
  const server = await startServer(
    { ...defaultOptions(root), ...overrides },
    createLogger({ name: "rest-server-test", level: "silent" }),
  );
  scope.defer("stop rest-server", () => server.close());
  return { server, root, url: server.url };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Send the body with chunked encoding, without Content-Length. */
  chunked?: boolean;
  auth?: [string, string];
  socketPath?: string;
}

/** A plain HTTP request that sends exactly what it is told (no path normalisation). */
export function request(url: string, path: string, options: RequestOptions = {}): Promise<Reply> {
  const base = new URL(url);
  const headers: Record<string, string> = { ...options.headers };
  if (options.auth) headers.Authorization = `Basic ${Buffer.from(options.auth.join(":")).toString("base64")}`;
  if (options.body !== undefined) {
    if (options.chunked) headers["Transfer-Encoding"] = "chunked";
    else headers["Content-Length"] = String(Buffer.byteLength(options.body));
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...(options.socketPath
          ? { socketPath: options.socketPath }
          : { host: base.hostname, port: base.port }),
        path,
        method: options.method ?? "GET",
        headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString("utf8") });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** Create a repository and return its base path (`/` or `/alice/`). */
export async function createRepo(url: string, repo: string, auth?: [string, string]): Promise<void> {
  const reply = await request(url, `${repo}?create=true`, { method: "POST", ...(auth ? { auth } : {}) });
  if (reply.status !== 200) throw new Error(`create ${repo}: ${reply.status} ${reply.text}`);
}

/** Send raw bytes and return what the server answered before closing or within 2 s. */
export async function rawExchange(url: string, bytes: string | Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.on("error", () => {});
  socket.write(bytes);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 2000);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  socket.destroy();
  return Buffer.concat(chunks).toString("latin1");
}
