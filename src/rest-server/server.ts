import type { Stats } from "node:fs";
import { lstat, readFile, rm } from "node:fs/promises";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Duplex } from "node:stream";
import type { SecureContextOptions } from "node:tls";
import { ConfigError, isErrno } from "../system/errors.js";
import type { Logger } from "../system/log.js";
import { type AccessLog, combinedLogLine, openAccessLog } from "./access-log.js";
import { createHandler, requestUser } from "./handler.js";
import { type ListenTarget, parseListen, socketFromSystemd } from "./listen.js";
import type { MirrorOptions } from "./mirror/start-mirror.js";
import { openStorage } from "./open-storage.js";
import type { QuotaLimits } from "./quota-config.js";
import { UsageTracker } from "./usage-tracker.js";

export interface ServerOptions {
  path: string;
  /** `s3://BUCKET[/PREFIX]`: keep repositories in an S3 bucket instead of under `path`. */
  storage: string | undefined;
  /** The S3 endpoint (path-style addressing, as RGW and MinIO want); else AWS's, virtual-host style. */
  s3Endpoint: string | undefined;
  /** Reads of data blobs answered with a redirect to S3, signed for this endpoint (else s3Endpoint's). */
  s3RedirectReads: { endpoint: string | undefined } | undefined;
  /** A second storage every stored object is copied to (--mirror ...). */
  mirror: MirrorOptions | undefined;
  /** Servers sharing the storage (quotas: see UsageTracker). */
  instances: number;
  /** Re-list the storage for quotas and metrics this often (0: only at start-up). */
  usageRefreshMs: number;
  listen: string;
  noAuth: boolean;
  htpasswdFile: string | undefined;
  proxyAuthUsername: string | undefined;
  privateRepos: boolean;
  appendOnly: boolean;
  /** The user who alone may delete in append-only mode (maintain's identity). */
  maintenanceUser: string | undefined;
  /** A maintain file whose entries this server runs on their schedules (--maintain). */
  maintain: string | undefined;
  maxSize: number | undefined;
  quotaFile: string | undefined;
  prometheus: boolean;
  prometheusNoAuth: boolean;
  tls: boolean;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  tlsMinVer: "1.2" | "1.3";
  log: string | undefined;
  noVerifyUpload: boolean;
  groupAccessibleRepos: boolean;
  /** How long in-flight requests may run after SIGINT/SIGTERM before their connections are cut. */
  shutdownGraceMs: number;
}

export interface RunningServer {
  /** Base URL to give restic (`rest:<url>/<repo>/`), or the socket path. */
  url: string;
  address: AddressInfo | string;
  /** SIGHUP: re-read htpasswd and the TLS certificate. */
  reload(): Promise<void>;
  /** Stop accepting, let in-flight requests finish (bounded), then close every connection. */
  close(): Promise<void>;
}

function validate(options: ServerOptions): void {
  if (options.privateRepos && options.noAuth && !options.proxyAuthUsername) {
    throw new ConfigError("--private-repos needs authentication; it cannot be combined with --no-auth");
  }
  if (!options.tls && (options.tlsCert || options.tlsKey)) {
    throw new ConfigError("--tls-cert and --tls-key need --tls");
  }
}

async function loadTls(options: ServerOptions): Promise<SecureContextOptions> {
  const certFile = options.tlsCert ?? path.join(options.path, "public_key");
  const keyFile = options.tlsKey ?? path.join(options.path, "private_key");
  try {
    return { cert: await readFile(certFile), key: await readFile(keyFile) };
  } catch (error) {
    throw new ConfigError(
      `cannot load TLS certificate/key (${certFile}, ${keyFile}): ${(error as Error).message}`,
    );
  }
}

async function quotaLimits(options: ServerOptions): Promise<QuotaLimits | undefined> {
  const limits: QuotaLimits = options.quotaFile
    ? await (await import("./quota-config.js")).loadQuotaFile(options.quotaFile)
    : { users: new Map(), repos: new Map() };
  if (options.maxSize !== undefined)
    limits.total = Math.min(options.maxSize, limits.total ?? Number.POSITIVE_INFINITY);
  const any = limits.total !== undefined || limits.users.size > 0 || limits.repos.size > 0;
  return any ? limits : undefined;
}

/** A socket left at the path (by an earlier run) is removed; anything else there is an error. */
async function removeStaleSocket(file: string): Promise<void> {
  let info: Stats;
  try {
    info = await lstat(file);
  } catch (error) {
    if (isErrno(error, "ENOENT")) return;
    throw error;
  }
  if (!info.isSocket())
    throw new ConfigError(`--listen unix:${file}: ${file} exists and is not a socket; not removing it`);
  await rm(file, { force: true });
}

function listenOn(server: http.Server, target: ListenTarget): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const done = () => {
      server.off("error", reject);
      resolve();
    };
    if (target.kind === "tcp") server.listen(target.port, target.host, done);
    else if (target.kind === "unix") server.listen(target.path, done);
    else server.listen({ fd: target.fd }, done);
  });
}

function baseUrl(server: http.Server, tls: boolean): { url: string; address: AddressInfo | string } {
  const address = server.address();
  if (typeof address === "string" || address === null)
    return { url: `unix:${address}`, address: address ?? "" };
  const wildcard = address.address === "::" || address.address === "0.0.0.0";
  const host = wildcard ? "127.0.0.1" : address.family === "IPv6" ? `[${address.address}]` : address.address;
  return { url: `${tls ? "https" : "http"}://${host}:${address.port}`, address };
}

function attachAccessLog(server: http.Server, sink: AccessLog): void {
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const started = new Date();
    res.on("finish", () => {
      const bytes = Number(res.getHeader("content-length") ?? 0);
      sink.write(combinedLogLine(req, res, requestUser.get(req), bytes, started));
    });
  });
}

/**
 * The htpasswd users, unless --no-auth. With --proxy-auth-username the file is optional (as in
 * upstream 0.14): without one the proxy's header is the only authentication.
 */
async function loadAuth(options: ServerOptions, log: Logger) {
  if (options.noAuth) return undefined;
  const file = options.htpasswdFile ?? path.join(options.path, ".htpasswd");
  if (options.proxyAuthUsername) {
    const present = await lstat(file).then(
      () => true,
      () => false,
    );
    if (!present) {
      log.info(
        { action: "auth", header: options.proxyAuthUsername },
        "proxy authentication only (no htpasswd file)",
      );
      return undefined;
    }
  }
  return (await import("./authenticator.js")).Authenticator.load(file, log);
}

export async function startServer(options: ServerOptions, log: Logger): Promise<RunningServer> {
  validate(options);
  const target = socketFromSystemd(process.env, process.pid) ?? parseListen(options.listen);
  const maintain = options.maintain
    ? await (await import("./maintain/config.js")).loadMaintainConfig(options.maintain)
    : undefined;
  if (maintain && options.maintenanceUser !== undefined && options.maintenanceUser !== maintain.user)
    throw new ConfigError(
      `--maintenance-user ${options.maintenanceUser} is not the user ${maintain.user} that ${options.maintain} names`,
    );
  const maintenanceUser = options.maintenanceUser ?? maintain?.user;
  if (maintenanceUser !== undefined && options.noAuth && !options.proxyAuthUsername)
    throw new ConfigError(
      `${options.maintain ? "--maintain" : "--maintenance-user"} needs authentication (the maintenance user logs in); it cannot be combined with --no-auth`,
    );
  const primary = await openStorage(
    {
      location: options.storage ?? options.path,
      flag: "--storage",
      s3Endpoint: options.s3Endpoint,
      s3RedirectReads: options.s3RedirectReads,
      groupAccessible: options.groupAccessibleRepos,
    },
    log,
  );
  await primary.prepare();
  const mirror = options.mirror
    ? await (await import("./mirror/start-mirror.js")).startMirror(
        primary,
        options.mirror,
        options.groupAccessibleRepos,
        log,
      )
    : undefined;
  const storage = mirror?.storage ?? primary;
  // Optional features load their libraries only when enabled: every module left out keeps the heap
  // small, and with it the cost of each garbage collection while uploads stream through.
  const auth = await loadAuth(options, log);
  const limits = await quotaLimits(options);
  const usage =
    limits || options.prometheus
      ? new UsageTracker(storage, limits ?? { users: new Map(), repos: new Map() }, {
          instances: options.instances,
        })
      : undefined;
  if (usage) {
    await usage.scan();
    log.info({ action: "scan", bytes: usage.totalBytes(), storage: storage.location }, "storage scanned");
  }
  const refresh =
    usage && options.usageRefreshMs > 0
      ? setInterval(() => {
          usage.scan().then(
            () => log.debug({ action: "scan", bytes: usage.totalBytes() }, "storage scanned again"),
            (error: unknown) =>
              log.warn(
                { action: "scan.failed", err: (error as Error).message },
                "cannot list the storage; usage as before",
              ),
          );
        }, options.usageRefreshMs)
      : undefined;
  refresh?.unref();
  const metrics = options.prometheus
    ? new (await import("./metrics.js")).ServerMetrics(storage, usage, mirror?.queue)
    : undefined;
  const handler = createHandler({
    storage,
    noAuth: options.noAuth,
    auth,
    proxyAuthHeader: options.proxyAuthUsername,
    privateRepos: options.privateRepos,
    appendOnly: options.appendOnly,
    maintenanceUser,
    verifyUpload: !options.noVerifyUpload,
    usage,
    metrics,
    prometheusNoAuth: options.prometheusNoAuth,
    log,
  });

  const serverOptions: http.ServerOptions = {
    requestTimeout: 0,
    headersTimeout: 60_000,
    keepAliveTimeout: 65_000,
  };
  const server = options.tls
    ? https.createServer(
        { ...serverOptions, ...(await loadTls(options)), minVersion: `TLSv${options.tlsMinVer}` },
        handler,
      )
    : http.createServer(serverOptions, handler);
  if (options.log) attachAccessLog(server, await openAccessLog(options.log, log));
  // node:http hands CONNECT to a 'connect' listener and, without one, drops the connection unanswered.
  server.on("connect", (_req: IncomingMessage, socket: Duplex) => {
    socket.on("error", () => {});
    socket.end(
      "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD, POST, DELETE\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
  });

  if (target.kind === "unix") await removeStaleSocket(target.path);
  await listenOn(server, target);
  const { url, address } = baseUrl(server, options.tls);
  log.info(
    {
      action: "listen",
      url,
      storage: storage.location,
      auth: options.noAuth ? "none" : auth ? "htpasswd" : `proxy header ${options.proxyAuthUsername}`,
    },
    "rest-server ready",
  );

  if (maintain && !maintain.server && url.startsWith("unix:"))
    throw new ConfigError(
      `${options.maintain}: 'server' must name an http(s) URL of this server when it listens on a socket`,
    );
  const schedule = maintain
    ? await (await import("./maintain/schedule.js")).startMaintenanceSchedule({
        config: maintain,
        storage,
        server: maintain.server ?? url,
        reportDir: maintain.reportDir ?? path.join(options.path, ".maintain-reports"),
        log,
      })
    : undefined;

  return {
    url,
    address,
    async reload() {
      if (auth) await auth.reload();
      if (server instanceof https.Server) {
        server.setSecureContext(await loadTls(options));
        log.info({ action: "tls-reload" }, "TLS certificate reloaded");
      }
    },
    async close() {
      if (refresh) clearInterval(refresh);
      // Before the listener goes: an interrupted restic removes its lock through us.
      await schedule?.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections turn idle as their last request ends; close them as they do.
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      const timer = setTimeout(() => server.closeAllConnections(), options.shutdownGraceMs);
      server.closeIdleConnections();
      await closed;
      clearInterval(sweep);
      clearTimeout(timer);
      await mirror?.close();
      if (target.kind === "unix") await removeStaleSocket(target.path).catch(() => {});
      log.info({ action: "shutdown" }, "rest-server stopped");
    },
  };
}
