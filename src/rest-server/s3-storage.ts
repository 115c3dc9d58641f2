import { createHash, type Hash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { type Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { ConfigError } from "../system/errors.js";
import type { Logger } from "../system/log.js";
import { HttpError } from "./http-error.js";
import { parseRange } from "./range.js";
import { type BlobType, isBlobId, repoOfStoredPath } from "./repo-path.js";
import type {
  ListEntry,
  ObjectRef,
  OpenedObject,
  SaveExpect,
  SaveOutcome,
  Storage,
  StoredBytes,
} from "./storage.js";
import { UpstreamPool, type UpstreamResponse } from "./upstream-get.js";
import { noteBodyBytes } from "./young-gc.js";

/** One PUT takes up to 5 GiB; multipart is never used (RGW ignores If-None-Match when completing one). */
const MAX_PUT_BYTES = 5 * 1024 ** 3;
/** A config file (restic's is about 150 bytes) is read whole so it can be signed with its hash. */
const MAX_CONFIG_BYTES = 1024 * 1024;
/** An object that marks a repository made through us (a hidden name no repository path can have). */
const REPO_MARKER = ".rest-server-repository";
const EMPTY_SHA256 = createHash("sha256").digest("hex");
/**
 * How long a redirect's signed URL is good for: the client follows it at once, so this only has to
 * cover clock skew. A leaked URL reads one pack, which restic has encrypted.
 */
const READ_URL_SECONDS = 600;
const CONNECT_TIMEOUT_MS = 5_000;
/** A storage that stops answering (RGW with its OSD gone) must fail the request, not hang it. */
const RESPONSE_TIMEOUT_MS = 120_000;
/** The URLs of our own GETs are used at once. */
const GET_URL_SECONDS = 60;

export interface S3Location {
  bucket: string;
  /** Key prefix without slashes at either end ("" for the bucket's root). */
  prefix: string;
}

/** `s3://BUCKET[/PREFIX]`. */
export function parseS3Location(text: string): S3Location {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(text);
  if (!match) throw new ConfigError(`--storage ${text}: expected s3://BUCKET or s3://BUCKET/PREFIX`);
  const bucket = match[1] as string;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    throw new ConfigError(
      `--storage ${text}: '${bucket}' is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')`,
    );
  const prefix = (match[2] ?? "").replace(/^\/+|\/+$/g, "");
  if (prefix.split("/").some((part) => part === "." || part === ".."))
    throw new ConfigError(`--storage ${text}: the prefix may not contain '.' or '..' segments`);
  return { bucket, prefix };
}

export interface S3StorageOptions {
  /** An S3-compatible endpoint (RGW, MinIO): path-style addressing. Absent: AWS, virtual-host style. */
  endpoint: string | undefined;
  /**
   * Answer GETs of data blobs with a 307 to a signed URL of the object (the bytes then go from the
   * storage to the client, not through us), signed for this endpoint (default: `endpoint`).
   */
  redirectReads?: { endpoint: string | undefined };
  log: Logger;
}

interface S3Failure {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const statusOf = (error: unknown) => (error as S3Failure).$metadata?.httpStatusCode;
const isNotFound = (error: unknown) =>
  statusOf(error) === 404 || ["NotFound", "NoSuchKey"].includes((error as S3Failure).name ?? "");

/** Only the forms whose meaning S3 shares with ours are handed on (`bytes=5-3`, `bytes=-0` differ). */
function forwardableRange(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return undefined;
  if (first === "") return Number(last) > 0 ? `bytes=-${last}` : undefined;
  if (last !== "" && Number(last) < Number(first)) return undefined;
  return `bytes=${first}-${last}`;
}

/** What a GET of an object answered: the part it sent (a 206's Content-Range) or its length. */
interface Fetched {
  partial: { start: number; end: number; size: number } | undefined;
  length: number;
  send: OpenedObject["send"];
  close: OpenedObject["close"];
}

/** `bytes START-END/SIZE` of a 206 answer. */
function contentRange(text: string | undefined): { start: number; end: number; size: number } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(text ?? "");
  if (!match) return undefined;
  return { start: Number(match[1]), end: Number(match[2]), size: Number(match[3]) };
}

/** A client for an endpoint (path-style), or for AWS (virtual-host style) without one. */
function newClient(endpoint: string | undefined): S3Client {
  const agent = { keepAlive: true, maxSockets: 512 };
  const region =
    process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? (endpoint ? "us-east-1" : undefined);
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  return new S3Client({
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    ...(region ? { region } : {}),
    // The SDK's default for streamed bodies (aws-chunked with a trailing checksum) is refused by
    // RGW (411); integrity comes from the signed payload hash instead.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: new NodeHttpHandler({
      connectionTimeout: CONNECT_TIMEOUT_MS,
      requestTimeout: RESPONSE_TIMEOUT_MS,
      httpAgent: new http.Agent(agent),
      httpsAgent: new https.Agent(agent),
    }),
    logger: quiet,
  });
}

/**
 * Repositories in an S3 bucket, in the layout of restic's own s3 backend (`<prefix>/<repo>/config`,
 * `data/<2 hex>/<id>`, `keys/<id>`, ...), so restic can read them with `-r s3:` directly and the
 * other way round. Nothing is held locally: several servers can serve one bucket.
 *
 * Integrity without a local lock: a blob is created with `If-None-Match: *` (a second writer gets
 * 412: the object exists), and signed with its name as the SigV4 payload hash, so the S3 server
 * refuses a body that does not match (400) and stores nothing: a corrupt blob never becomes
 * visible under its name, not even for a moment. Every body streams both ways.
 */
export class S3Storage implements Storage {
  private readonly client: S3Client;
  /** Signs the redirects' URLs (for the endpoint the clients reach), when reads are redirected. */
  private readonly signer: S3Client | undefined;
  private readonly knownRepos = new Set<string>();
  private readonly upstream = new UpstreamPool({
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    responseTimeoutMs: RESPONSE_TIMEOUT_MS,
  });

  constructor(
    private readonly where: S3Location,
    private readonly options: S3StorageOptions,
  ) {
    this.client = newClient(options.endpoint);
    const redirect = options.redirectReads;
    if (redirect)
      this.signer =
        redirect.endpoint === undefined || redirect.endpoint === options.endpoint
          ? this.client
          : newClient(redirect.endpoint);
  }

  get location(): string {
    return `s3://${this.where.bucket}${this.where.prefix ? `/${this.where.prefix}` : ""}`;
  }

  /** The key of `parts` in a repository (the repository's own base key without parts). */
  private keyOf(repo: readonly string[], ...parts: string[]): string {
    return [this.where.prefix, ...repo, ...parts].filter((part) => part !== "").join("/");
  }

  private key(ref: ObjectRef): string {
    if (ref.type === "config") return this.keyOf(ref.repo, "config");
    const name = ref.name as string;
    return ref.type === "data"
      ? this.keyOf(ref.repo, "data", name.slice(0, 2), name)
      : this.keyOf(ref.repo, ref.type, name);
  }

  /** An S3 failure that is not the request's fault: the storage is unavailable (503, restic retries). */
  private unavailable(error: unknown, what: string): HttpError {
    const failure = error as S3Failure;
    this.options.log.warn(
      { action: "s3.failed", what, status: statusOf(error), err: failure.name ?? failure.message },
      "S3 request failed",
    );
    return new HttpError(503, "storage unavailable");
  }

  private async call<T>(what: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw this.unavailable(error, what);
    }
  }

  async prepare(): Promise<void> {
    const Bucket = this.where.bucket;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket }));
      return;
    } catch (error) {
      if (!isNotFound(error)) {
        const failure = error as S3Failure;
        throw new ConfigError(
          `cannot reach bucket ${Bucket}${this.options.endpoint ? ` at ${this.options.endpoint}` : ""}: ${failure.name ?? failure.message} (HTTP ${statusOf(error) ?? "-"})`,
        );
      }
    }
    try {
      await this.client.send(new CreateBucketCommand({ Bucket }));
      this.options.log.info({ action: "s3.bucket", bucket: Bucket }, "bucket created");
    } catch (error) {
      const failure = error as S3Failure;
      throw new ConfigError(
        `bucket ${Bucket} does not exist and cannot be created: ${failure.name ?? failure.message}`,
      );
    }
  }

  /** An object's size, or undefined when there is none under the key. */
  private async headSize(Key: string): Promise<number | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.where.bucket, Key }));
      return head.ContentLength ?? 0;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.unavailable(error, `HEAD ${Key}`);
    }
  }

  async createRepo(repo: readonly string[]): Promise<void> {
    const key = this.keyOf(repo, REPO_MARKER);
    await this.call(`PUT ${key}`, () =>
      this.client.send(
        signedPut(
          new PutObjectCommand({ Bucket: this.where.bucket, Key: key, Body: "", ContentLength: 0 }),
          EMPTY_SHA256,
        ),
      ),
    );
    this.knownRepos.add(this.keyOf(repo));
  }

  /** Made through us (the marker), or by restic's s3 backend (its config): remembered once seen. */
  async repoExists(repo: readonly string[]): Promise<boolean> {
    const base = this.keyOf(repo);
    if (this.knownRepos.has(base)) return true;
    const found =
      (await this.headSize(this.keyOf(repo, REPO_MARKER))) !== undefined ||
      (await this.size({ repo, type: "config" })) !== undefined;
    if (found) this.knownRepos.add(base);
    return found;
  }

  size(ref: ObjectRef): Promise<number | undefined> {
    return this.headSize(this.key(ref));
  }

  /** Every key under a prefix with its size and time, page by page (1,000 a page). */
  private async *listPages(
    prefix: string,
  ): AsyncGenerator<NonNullable<ListObjectsV2CommandOutput["Contents"]>> {
    let token: string | undefined;
    do {
      const page: ListObjectsV2CommandOutput = await this.call(`LIST ${prefix}`, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.where.bucket,
            Prefix: prefix,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        ),
      );
      yield page.Contents ?? [];
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async list(repo: readonly string[], type: BlobType): Promise<AsyncIterable<ListEntry[]> | undefined> {
    if (!(await this.repoExists(repo))) return undefined;
    const prefix = `${this.keyOf(repo, type)}/`;
    const pages = this.listPages(prefix);
    return (async function* () {
      for await (const page of pages) {
        const entries: ListEntry[] = [];
        for (const object of page) {
          const relative = (object.Key ?? "").slice(prefix.length);
          const name = type === "data" ? relative.slice(3) : relative;
          const inPlace =
            type === "data" ? relative.slice(0, 3) === `${name.slice(0, 2)}/` : !relative.includes("/");
          if (inPlace && isBlobId(name)) entries.push({ name, size: object.Size ?? 0 });
        }
        yield entries;
      }
    })();
  }

  async open(
    ref: ObjectRef,
    rangeHeader: string | undefined,
    head: boolean,
  ): Promise<OpenedObject | undefined> {
    if (head) return this.fromHead(ref, rangeHeader);
    return this.read(ref, rangeHeader, false);
  }

  private async fromHead(ref: ObjectRef, rangeHeader: string | undefined): Promise<OpenedObject | undefined> {
    const size = await this.size(ref);
    if (size === undefined) return undefined;
    return { size, range: parseRange(rangeHeader, size), send: async () => {}, close: async () => {} };
  }

  private async read(
    ref: ObjectRef,
    rangeHeader: string | undefined,
    retried: boolean,
  ): Promise<OpenedObject | undefined> {
    const fetched = await this.fetch(this.key(ref), forwardableRange(rangeHeader));
    if (fetched === "missing") return undefined;
    // Past the end (or an empty object): our answer is 416 with the size, as for a directory.
    if (fetched === "past-end") return this.fromHead(ref, rangeHeader);
    return this.answered(ref, rangeHeader, retried, fetched);
  }

  /**
   * A GET of a signed URL on our own connection (upstream-get.ts: the body goes to the client
   * through reused buffers); the SDK only for an answer that path does not take.
   */
  private async fetch(Key: string, Range: string | undefined): Promise<Fetched | "missing" | "past-end"> {
    let answer: UpstreamResponse;
    try {
      const url = await this.signedGet(this.client, Key, GET_URL_SECONDS);
      answer = await this.upstream.get(new URL(url), Range);
    } catch (error) {
      throw this.unavailable(error, `GET ${Key}`);
    }
    if (answer.status === 404 || answer.status === 416) {
      answer.discard();
      return answer.status === 404 ? "missing" : "past-end";
    }
    if ((answer.status !== 200 && answer.status !== 206) || answer.length === undefined) {
      answer.discard();
      // The SDK names the storage's failure in the log (or reads an answer without a length).
      return this.fetchWithSdk(Key, Range);
    }
    return {
      partial: Range ? contentRange(answer.headers.get("content-range")) : undefined,
      length: answer.length,
      send: (res) => answer.send(res),
      close: async () => answer.discard(),
    };
  }

  private async fetchWithSdk(
    Key: string,
    Range: string | undefined,
  ): Promise<Fetched | "missing" | "past-end"> {
    let answer: GetObjectCommandOutput;
    try {
      answer = await this.client.send(
        new GetObjectCommand({ Bucket: this.where.bucket, Key, ...(Range ? { Range } : {}) }),
      );
    } catch (error) {
      if (isNotFound(error)) return "missing";
      if (statusOf(error) === 416) return "past-end";
      throw this.unavailable(error, `GET ${Key}`);
    }
    const body = answer.Body as Readable;
    return {
      partial: Range ? contentRange(answer.ContentRange) : undefined,
      length: answer.ContentLength ?? 0,
      send: (res) => {
        // Each chunk of the SDK's answer is a fresh buffer, as an upload's are: paced the same way.
        body.on("data", (chunk: Buffer) => noteBodyBytes(chunk.length));
        return pipeline(body, res, { end: true });
      },
      close: async () => {
        if (!body.destroyed) body.destroy();
      },
    };
  }

  /** The storage's answer as ours: its partial answer, or our range over the whole object. */
  private async answered(
    ref: ObjectRef,
    rangeHeader: string | undefined,
    retried: boolean,
    answer: Fetched,
  ): Promise<OpenedObject | undefined> {
    const { partial, length, send, close } = answer;
    if (partial)
      return {
        size: partial.size,
        range: { kind: "partial", start: partial.start, end: partial.end },
        send,
        close,
      };
    const range = parseRange(rangeHeader, length);
    if (range.kind === "full") return { size: length, range, send, close };
    await close();
    if (range.kind === "unsatisfiable")
      return { size: length, range, send: async () => {}, close: async () => {} };
    // A range we handle ourselves (S3 reads that form differently): asked for in S3's form.
    if (retried) throw this.unavailable(new Error("the storage ignored Range"), `GET ${this.key(ref)}`);
    return this.read(ref, `bytes=${range.start}-${range.end}`, true);
  }

  private signedGet(client: S3Client, Key: string, expiresIn: number): Promise<string> {
    const command = new GetObjectCommand({ Bucket: this.where.bucket, Key });
    return this.call(`SIGN ${Key}`, () => getSignedUrl(client, command, { expiresIn }));
  }

  /**
   * With redirected reads: a signed URL to GET a data blob from the storage itself. The client sends
   * its Range header again (it is not signed); a form S3 reads differently is answered by us.
   */
  async readUrl(ref: ObjectRef, rangeHeader: string | undefined): Promise<string | undefined> {
    if (!this.signer || ref.type !== "data") return undefined;
    if (rangeHeader !== undefined && forwardableRange(rangeHeader) !== rangeHeader.trim()) return undefined;
    return this.signedGet(this.signer, this.key(ref), READ_URL_SECONDS);
  }

  async save(ref: ObjectRef, body: Readable, expect: SaveExpect): Promise<SaveOutcome> {
    if (expect.size > MAX_PUT_BYTES) throw new HttpError(413, "object larger than 5 GiB (one S3 PUT)");
    const Key = this.key(ref);
    // RGW checks the signed payload hash only when there is a payload: an empty body is checked here.
    if (expect.size === 0 && expect.sha256 !== undefined && expect.sha256 !== EMPTY_SHA256)
      throw new HttpError(400, "content does not match its SHA-256 name");
    const signedWith = ref.type === "config" ? undefined : (ref.name as string);
    // The config has no hash for a name: read whole (it is tiny) and signed with its own hash.
    const content =
      signedWith === undefined && expect.size <= MAX_CONFIG_BYTES
        ? await readAll(body, expect.size)
        : undefined;
    const hashed = content === undefined ? new HashingStream(expect.sha256 !== undefined) : undefined;
    const abort = new AbortController();
    // The client went away before sending it all: the PUT is cut, so nothing is stored.
    const cut = () => {
      if (!body.readableEnded) abort.abort();
    };
    body.once("close", cut);
    if (hashed) body.pipe(hashed);
    const payloadHash =
      content !== undefined
        ? createHash("sha256").update(content).digest("hex")
        : (signedWith ?? "UNSIGNED-PAYLOAD");
    const put = signedPut(
      new PutObjectCommand({
        Bucket: this.where.bucket,
        Key,
        Body: content ?? hashed,
        ContentLength: expect.size,
        IfNoneMatch: "*",
        ContentType: "application/octet-stream",
      }),
      payloadHash,
    );
    try {
      await this.client.send(put, { abortSignal: abort.signal });
      return "saved";
    } catch (error) {
      if (abort.signal.aborted) throw Object.assign(new Error("aborted"), { code: "ECONNRESET" });
      const name = (error as S3Failure).name;
      if (statusOf(error) === 412 || name === "PreconditionFailed") {
        if (!expect.mayExist) throw new HttpError(403, "object already exists");
        // The stored one is valid (it was checked when it was made); this body must be the same.
        if (hashed && expect.sha256 !== undefined && (await hashed.finish()) !== expect.sha256)
          throw new HttpError(400, "content does not match its SHA-256 name");
        return "already-present";
      }
      if (name === "XAmzContentSHA256Mismatch" || name === "BadDigest")
        throw new HttpError(400, "content does not match its SHA-256 name");
      if (statusOf(error) === 413 || name === "EntityTooLarge") throw new HttpError(413, "object too large");
      throw this.unavailable(error, `PUT ${Key}`);
    } finally {
      body.off("close", cut);
    }
  }

  async remove(ref: ObjectRef): Promise<number | undefined> {
    const size = await this.size(ref);
    if (size === undefined) return undefined;
    const Key = this.key(ref);
    await this.call(`DELETE ${Key}`, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.where.bucket, Key })),
    );
    if (ref.type === "config") this.knownRepos.delete(this.keyOf(ref.repo));
    return size;
  }

  async *scan(): AsyncIterable<StoredBytes[]> {
    const root = this.keyOf([]);
    const under = root ? `${root}/` : "";
    for await (const page of this.listPages(under)) {
      const found: StoredBytes[] = [];
      for (const object of page) {
        const repo = repoOfStoredPath((object.Key ?? "").slice(under.length).split("/"));
        if (repo !== undefined) found.push({ repo, size: object.Size ?? 0 });
      }
      yield found;
    }
  }

  async newestSnapshot(repo: string): Promise<number | undefined> {
    let newest: number | undefined;
    for await (const page of this.listPages(`${this.keyOf(repo.split("/"), "snapshots")}/`))
      for (const object of page) {
        const time = object.LastModified?.getTime();
        if (time !== undefined && (newest === undefined || time > newest)) newest = time;
      }
    return newest;
  }
}

/** A PUT signed with this payload hash (SigV4's x-amz-content-sha256) instead of hashing the body. */
function signedPut(command: PutObjectCommand, payloadHash: string): PutObjectCommand {
  command.middlewareStack.add(
    (next) => async (args) => {
      (args.request as { headers: Record<string, string> }).headers["x-amz-content-sha256"] = payloadHash;
      return next(args);
    },
    { step: "build", name: "stowagePayloadHash" },
  );
  return command;
}

/** A small body, whole: exactly `size` bytes or a 400. */
async function readAll(body: Readable, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    length += (chunk as Buffer).length;
  }
  if (length !== size)
    throw new HttpError(400, `body is shorter than Content-Length (${length} of ${size} bytes)`);
  return Buffer.concat(chunks);
}

/** The upload on its way to S3, hashed as it passes (to check a re-upload answered 412). */
class HashingStream extends Transform {
  private readonly hash: Hash | undefined;

  constructor(withHash: boolean) {
    super();
    this.hash = withHash ? createHash("sha256") : undefined;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash?.update(chunk);
    noteBodyBytes(chunk.length);
    done(null, chunk);
  }

  /** Read what the S3 server did not take (a 412 may come before the end), then the digest. */
  async finish(): Promise<string | undefined> {
    if (!this.readableEnded) {
      this.resume();
      await new Promise<void>((resolve, reject) => {
        this.once("end", resolve);
        this.once("error", reject);
      });
    }
    return this.hash?.digest("hex");
  }
}
