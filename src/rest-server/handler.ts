import type { IncomingMessage, ServerResponse } from "node:http";
import { isErrno } from "../system/errors.js";
import type { Logger } from "../system/log.js";
import type { Authenticator } from "./authenticator.js";
import { HttpError, storageError } from "./http-error.js";
import { sendListing } from "./list-response.js";
import type { BlobLabels, ServerMetrics } from "./metrics.js";
import { type BlobType, parseRepoPath, repoKey, type Target } from "./repo-path.js";
import type { ObjectRef, SaveOutcome, Storage } from "./storage.js";
import type { UsageTracker } from "./usage-tracker.js";

export const V1_MEDIA_TYPE = "application/vnd.x.restic.rest.v1";
export const V2_MEDIA_TYPE = "application/vnd.x.restic.rest.v2";

export interface HandlerContext {
  storage: Storage;
  /** --no-auth: everyone is the anonymous user "". */
  noAuth: boolean;
  /** The htpasswd users; undefined with --no-auth, or with proxy authentication and no file. */
  auth: Authenticator | undefined;
  /** Header naming the user, set by a trusted reverse proxy (--proxy-auth-username). */
  proxyAuthHeader: string | undefined;
  privateRepos: boolean;
  appendOnly: boolean;
  /** The one user who may delete in append-only mode, and reach every repository (maintain). */
  maintenanceUser: string | undefined;
  verifyUpload: boolean;
  usage: UsageTracker | undefined;
  metrics: ServerMetrics | undefined;
  prometheusNoAuth: boolean;
  log: Logger;
}

/** The authenticated user of a request, for the access log. */
export const requestUser = new WeakMap<IncomingMessage, string>();

const UNAUTHORIZED = () =>
  new HttpError(401, "unauthorized", { "WWW-Authenticate": 'Basic realm="restic", charset="UTF-8"' });

export function createHandler(ctx: HandlerContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(ctx, req, res).catch((error: unknown) => sendError(ctx, req, res, error));
  };
}

const isMaintenance = (ctx: HandlerContext, user: string) =>
  ctx.maintenanceUser !== undefined && user === ctx.maintenanceUser;

async function identify(ctx: HandlerContext, req: IncomingMessage): Promise<string | undefined> {
  if (ctx.proxyAuthHeader) {
    const fromProxy = req.headers[ctx.proxyAuthHeader.toLowerCase()];
    if (typeof fromProxy === "string" && fromProxy !== "") return fromProxy;
  }
  if (ctx.noAuth) return "";
  // Without an htpasswd file (proxy authentication only) a request without the header is refused.
  return ctx.auth?.authenticate(req.headers.authorization);
}

async function handle(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? "/";
  const queryAt = url.indexOf("?");
  const rawPath = queryAt < 0 ? url : url.slice(0, queryAt);
  const query = new URLSearchParams(queryAt < 0 ? "" : url.slice(queryAt + 1));

  if (ctx.metrics && rawPath === "/metrics") return serveMetrics(ctx, ctx.metrics, req, res);

  const user = await identify(ctx, req);
  if (user === undefined) throw UNAUTHORIZED();
  requestUser.set(req, user);

  const parsed = parseRepoPath(rawPath);
  if (!parsed.ok) throw new HttpError(parsed.status, parsed.message);
  const target = parsed.target;
  if (ctx.privateRepos && target.repo[0] !== user && !isMaintenance(ctx, user)) throw UNAUTHORIZED();

  switch (target.kind) {
    case "repo":
      return createRepo(ctx, req, res, target, query);
    case "list":
      return listBlobs(ctx, req, res, target.repo, target.type);
    case "config":
    case "blob":
      return objectRoute(ctx, req, res, target, user);
  }
}

/** Set headers one by one (so the access log can read them back), then send the status line. */
function writeHeaders(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | number> = {},
): ServerResponse {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  return res.writeHead(status);
}

function methodNotAllowed(allow: string): HttpError {
  return new HttpError(405, "method not allowed", { Allow: allow });
}

async function createRepo(
  ctx: HandlerContext,
  req: IncomingMessage,
  res: ServerResponse,
  target: Extract<Target, { kind: "repo" }>,
  query: URLSearchParams,
): Promise<void> {
  if (req.method !== "POST") throw methodNotAllowed("POST");
  if (query.get("create") !== "true") throw new HttpError(400, "POST on a repository needs ?create=true");
  await ctx.storage.createRepo(target.repo);
  ctx.log.info({ action: "create-repo", repo: `/${repoKey(target.repo)}` }, "repository created");
  writeHeaders(res, 200, { "Content-Length": "0" }).end();
}

async function listBlobs(
  ctx: HandlerContext,
  req: IncomingMessage,
  res: ServerResponse,
  repo: string[],
  type: BlobType,
): Promise<void> {
  if (req.method !== "GET") throw methodNotAllowed("GET");
  const v2 = req.headers.accept === V2_MEDIA_TYPE;
  const batches = await ctx.storage.list(repo, type, v2);
  if (!batches) throw new HttpError(404, "not found");
  await sendListing(res, batches, v2, { "Content-Type": v2 ? V2_MEDIA_TYPE : V1_MEDIA_TYPE });
}

async function objectRoute(
  ctx: HandlerContext,
  req: IncomingMessage,
  res: ServerResponse,
  target: Extract<Target, { kind: "config" | "blob" }>,
  user: string,
): Promise<void> {
  const type = target.kind === "config" ? "config" : target.type;
  const ref: ObjectRef =
    target.kind === "blob" ? { repo: target.repo, type, name: target.name } : { repo: target.repo, type };
  const labels: BlobLabels = { user, repo: `/${repoKey(target.repo)}`, type };
  switch (req.method) {
    case "HEAD":
    case "GET":
      return sendObject(ctx, req, res, ref, labels);
    case "POST":
      return receiveObject(ctx, req, res, target, ref, labels);
    case "DELETE":
      return deleteObject(ctx, res, target, ref, labels);
    default:
      throw methodNotAllowed("GET, HEAD, POST, DELETE");
  }
}

async function sendObject(
  ctx: HandlerContext,
  req: IncomingMessage,
  res: ServerResponse,
  ref: ObjectRef,
  labels: BlobLabels,
): Promise<void> {
  const head = req.method === "HEAD";
  const elsewhere = head ? undefined : await ctx.storage.readUrl?.(ref, req.headers.range);
  if (elsewhere !== undefined) {
    // The bytes go from the storage to the client: counted as a read, their size is not known here.
    writeHeaders(res, 307, { Location: elsewhere, "Content-Length": 0 }).end();
    ctx.metrics?.record("read", labels, 0);
    return;
  }
  const opened = await ctx.storage.open(ref, req.headers.range, head);
  if (!opened) throw new HttpError(404, "not found");
  try {
    const { size, range } = opened;
    if (range.kind === "unsatisfiable") {
      throw new HttpError(416, "requested range not satisfiable", { "Content-Range": `bytes */${size}` });
    }
    const start = range.kind === "partial" ? range.start : 0;
    const end = range.kind === "partial" ? range.end : size - 1;
    const length = Math.max(0, end - start + 1);
    const headers: Record<string, string | number> = {
      "Content-Type": "application/octet-stream",
      "Content-Length": length,
      "Accept-Ranges": "bytes",
    };
    if (range.kind === "partial") headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
    writeHeaders(res, range.kind === "partial" ? 206 : 200, headers);
    if (head || length === 0) {
      res.end();
      return;
    }
    await opened.send(res);
    ctx.metrics?.record("read", labels, length);
  } finally {
    await opened.close();
  }
}

function contentLength(req: IncomingMessage): number {
  const header = req.headers["content-length"];
  if (header === undefined) throw new HttpError(411, "Content-Length is required");
  const size = Number(header);
  if (!Number.isSafeInteger(size) || size < 0) throw new HttpError(400, "invalid Content-Length");
  return size;
}

async function receiveObject(
  ctx: HandlerContext,
  req: IncomingMessage,
  res: ServerResponse,
  target: Extract<Target, { kind: "config" | "blob" }>,
  ref: ObjectRef,
  labels: BlobLabels,
): Promise<void> {
  const size = contentLength(req);
  if (!(await ctx.storage.repoExists(target.repo))) throw new HttpError(404, "repository not found");
  const verify = target.kind === "blob" && ctx.verifyUpload;
  // Without verification an existing object cannot be told apart from a different one: refuse early.
  if (!verify && (await ctx.storage.size(ref)) !== undefined)
    throw new HttpError(403, "object already exists");

  const reservation = ctx.usage?.reserve(target.repo, size);
  let outcome: SaveOutcome;
  try {
    outcome = await ctx.storage.save(ref, req, {
      size,
      ...(verify && target.kind === "blob" ? { sha256: target.name } : {}),
      mayExist: verify,
    });
  } catch (error) {
    reservation?.release();
    throw error;
  }
  if (outcome === "already-present") reservation?.release();
  else {
    reservation?.commit();
    ctx.metrics?.record("write", labels, size);
  }
  writeHeaders(res, 200, { "Content-Length": "0" }).end();
}

async function deleteObject(
  ctx: HandlerContext,
  res: ServerResponse,
  target: Extract<Target, { kind: "config" | "blob" }>,
  ref: ObjectRef,
  labels: BlobLabels,
): Promise<void> {
  const deletable = (target.kind === "blob" && target.type === "locks") || isMaintenance(ctx, labels.user);
  if (ctx.appendOnly && !deletable) throw new HttpError(403, "append-only mode: only locks may be deleted");
  const removed = await ctx.storage.remove(ref);
  if (removed !== undefined) {
    ctx.usage?.removed(target.repo, removed);
    ctx.metrics?.record("delete", labels, removed);
  }
  writeHeaders(res, 200, { "Content-Length": "0" }).end();
}

async function serveMetrics(
  ctx: HandlerContext,
  metrics: ServerMetrics,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (!ctx.prometheusNoAuth) {
    const user = await identify(ctx, req);
    if (user === undefined || (ctx.privateRepos && user !== "metrics")) throw UNAUTHORIZED();
  }
  if (req.method !== "GET" && req.method !== "HEAD") throw methodNotAllowed("GET, HEAD");
  const body = await metrics.registry.metrics();
  writeHeaders(res, 200, {
    "Content-Type": metrics.registry.contentType,
    "Content-Length": Buffer.byteLength(body),
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

function sendError(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse, error: unknown): void {
  const known = error instanceof HttpError ? error : storageError(error);
  if (!known && !req.destroyed && !isErrno(error, "ECONNRESET") && !isAborted(error)) {
    ctx.log.error({ action: "request", method: req.method, url: req.url, err: error }, "request failed");
  }
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const status = known?.status ?? 500;
  const body = `${known?.message ?? "internal server error"}\n`;
  const headers: Record<string, string | number> = {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    ...known?.headers,
  };
  // An unread request body would have to be drained before the next request; close instead.
  if (!req.complete) headers.Connection = "close";
  writeHeaders(res, status, headers);
  res.end(body);
}

function isAborted(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.message === "aborted" || (error as NodeJS.ErrnoException).code === "ECONNABORTED")
  );
}
