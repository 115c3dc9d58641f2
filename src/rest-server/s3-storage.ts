import { createHash, type Hash } from "node:crypto";
import { type Readable, Transform, type TransformCallback } from "node:stream";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { ConfigError } from "../system/errors.js";
import type { Logger } from "../system/log.js";
import { HttpError } from "./http-error.js";
import { type BlobType, isBlobId, objectSegments, repoOfStoredPath } from "./repo-path.js";
import { isNotFound, newClient, S3Bucket, type S3Failure, statusOf } from "./s3-bucket.js";
import { explainS3Failure } from "./s3-errors.js";
import { S3Reader } from "./s3-read.js";
import {
  findRepositories,
  type ListEntry,
  type ObjectRef,
  type OpenedObject,
  type SaveExpect,
  type SaveOutcome,
  type Storage,
  type StoredBytes,
} from "./storage.js";
import { noteBodyBytes } from "./young-gc.js";

/** One PUT takes up to 5 GiB; multipart is never used (RGW ignores If-None-Match when completing one). */
const MAX_PUT_BYTES = 5 * 1024 ** 3;
/** A config file (restic's is about 150 bytes) is read whole so it can be signed with its hash. */
const MAX_CONFIG_BYTES = 1024 * 1024;
/** An object that marks a repository made through us (a hidden name no repository path can have). */
const REPO_MARKER = ".rest-server-repository";
const EMPTY_SHA256 = createHash("sha256").digest("hex");
export interface S3Location {
  bucket: string;
  /** Key prefix without slashes at either end ("" for the bucket's root). */
  prefix: string;
}

/** `s3://BUCKET[/PREFIX]`. */
export function parseS3Location(text: string, flag = "--storage"): S3Location {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(text);
  if (!match) throw new ConfigError(`${flag} ${text}: expected s3://BUCKET or s3://BUCKET/PREFIX`);
  const bucket = match[1] as string;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    throw new ConfigError(
      `${flag} ${text}: '${bucket}' is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')`,
    );
  const prefix = (match[2] ?? "").replace(/^\/+|\/+$/g, "");
  if (prefix.split("/").some((part) => part === "." || part === ".."))
    throw new ConfigError(`${flag} ${text}: the prefix may not contain '.' or '..' segments`);
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
  /** The flag that named this storage, for start-up errors (default --storage). */
  flag?: string;
  /** A profile of the AWS config files for this storage's credentials (else the standard chain). */
  profile?: string;
  log: Logger;
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
  private readonly bucket: S3Bucket;
  private readonly reader: S3Reader;
  private readonly knownRepos = new Set<string>();

  constructor(
    private readonly where: S3Location,
    private readonly options: S3StorageOptions,
  ) {
    const client = newClient(options.endpoint, options.profile);
    this.bucket = new S3Bucket(client, where.bucket, options.log);
    const redirect = options.redirectReads;
    const signer: S3Client | undefined = !redirect
      ? undefined
      : redirect.endpoint === undefined || redirect.endpoint === options.endpoint
        ? client
        : newClient(redirect.endpoint, options.profile);
    this.reader = new S3Reader(this.bucket, signer);
  }

  private get client(): S3Client {
    return this.bucket.client;
  }

  get location(): string {
    return `s3://${this.where.bucket}${this.where.prefix ? `/${this.where.prefix}` : ""}`;
  }

  /** The key of `parts` in a repository (the repository's own base key without parts). */
  private keyOf(repo: readonly string[], ...parts: string[]): string {
    return [this.where.prefix, ...repo, ...parts].filter((part) => part !== "").join("/");
  }

  private key(ref: ObjectRef): string {
    return this.keyOf(ref.repo, ...objectSegments(ref.type, ref.name));
  }

  /**
   * The bucket answers (or is created). A failure ends the start with what went wrong and what to
   * try; a HEAD's error has no body, so a listing of one key is asked for its error's name.
   */
  async prepare(): Promise<void> {
    const Bucket = this.where.bucket;
    let failure: unknown;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket }));
      return;
    } catch (error) {
      failure = error;
    }
    if (!isNotFound(failure)) {
      if (statusOf(failure) !== undefined)
        failure = await this.client.send(new ListObjectsV2Command({ Bucket, MaxKeys: 1 })).then(
          () => failure,
          (error: unknown) => error,
        );
      throw await this.startError(`cannot use bucket ${Bucket}`, failure);
    }
    try {
      await this.client.send(new CreateBucketCommand({ Bucket }));
      this.options.log.info({ action: "s3.bucket", bucket: Bucket }, "bucket created");
    } catch (error) {
      throw await this.startError(`bucket ${Bucket} does not exist and cannot be created`, error);
    }
  }

  private async startError(what: string, error: unknown): Promise<ConfigError> {
    const { endpoint } = this.options;
    const keys = await this.client.config
      .credentials()
      .catch(() => undefined as { accessKeyId?: string } | undefined);
    const host = endpoint
      ? new URL(endpoint).host
      : ((error as { hostname?: string }).hostname ?? "the AWS S3 endpoint");
    const explained = explainS3Failure(error, {
      endpoint,
      host,
      bucket: this.where.bucket,
      accessKeyId: keys?.accessKeyId,
    });
    return new ConfigError(`${this.options.flag ?? "--storage"} ${this.location}: ${what}: ${explained}`, {
      cause: error,
    });
  }

  async createRepo(repo: readonly string[]): Promise<void> {
    const key = this.keyOf(repo, REPO_MARKER);
    await this.bucket.call(`PUT ${key}`, () =>
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
      (await this.bucket.headSize(this.keyOf(repo, REPO_MARKER))) !== undefined ||
      (await this.size({ repo, type: "config" })) !== undefined;
    if (found) this.knownRepos.add(base);
    return found;
  }

  size(ref: ObjectRef): Promise<number | undefined> {
    return this.bucket.headSize(this.key(ref));
  }

  /** The listing under a prefix, page by page (1,000 keys a page; with a delimiter, the folders too). */
  private async *listPages(prefix: string, delimiter?: string): AsyncGenerator<ListObjectsV2CommandOutput> {
    let token: string | undefined;
    do {
      const page: ListObjectsV2CommandOutput = await this.bucket.call(`LIST ${prefix}`, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.where.bucket,
            Prefix: prefix,
            ...(delimiter ? { Delimiter: delimiter } : {}),
            ...(token ? { ContinuationToken: token } : {}),
          }),
        ),
      );
      yield page;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Every key under a prefix with its size and time. */
  private async *objects(prefix: string) {
    for await (const page of this.listPages(prefix)) yield page.Contents ?? [];
  }

  async list(repo: readonly string[], type: BlobType): Promise<AsyncIterable<ListEntry[]> | undefined> {
    if (!(await this.repoExists(repo))) return undefined;
    const prefix = `${this.keyOf(repo, ...objectSegments(type))}/`;
    const pages = this.objects(prefix);
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

  open(ref: ObjectRef, rangeHeader: string | undefined, head: boolean): Promise<OpenedObject | undefined> {
    return this.reader.open(this.key(ref), rangeHeader, head);
  }

  read(ref: ObjectRef): Promise<{ size: number; body: Readable } | undefined> {
    return this.reader.stream(this.key(ref));
  }

  readUrl(ref: ObjectRef, rangeHeader: string | undefined): Promise<string | undefined> {
    return this.reader.readUrl(this.key(ref), ref.type, rangeHeader);
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
      throw this.bucket.unavailable(error, `PUT ${Key}`);
    } finally {
      body.off("close", cut);
    }
  }

  async remove(ref: ObjectRef): Promise<number | undefined> {
    const size = await this.size(ref);
    if (size === undefined) return undefined;
    const Key = this.key(ref);
    await this.bucket.call(`DELETE ${Key}`, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.where.bucket, Key })),
    );
    if (ref.type === "config") this.knownRepos.delete(this.keyOf(ref.repo));
    return size;
  }

  async *scan(): AsyncIterable<StoredBytes[]> {
    const root = this.keyOf([]);
    const under = root ? `${root}/` : "";
    for await (const page of this.objects(under)) {
      const found: StoredBytes[] = [];
      for (const object of page) {
        const repo = repoOfStoredPath((object.Key ?? "").slice(under.length).split("/"));
        if (repo !== undefined) found.push({ repo, size: object.Size ?? 0 });
      }
      yield found;
    }
  }

  repositories(): Promise<string[][]> {
    return findRepositories(async (repo) => {
      const base = this.keyOf(repo);
      const prefix = base ? `${base}/` : "";
      let hasConfig = false;
      const children: string[] = [];
      for await (const page of this.listPages(prefix, "/")) {
        hasConfig ||= (page.Contents ?? []).some((object) => object.Key === `${prefix}config`);
        for (const common of page.CommonPrefixes ?? [])
          children.push((common.Prefix ?? "").slice(prefix.length).replace(/\/$/, ""));
      }
      return { hasConfig, children };
    });
  }

  async storedTimes(repo: readonly string[], type: BlobType): Promise<Map<string, number>> {
    const times = new Map<string, number>();
    const prefix = `${this.keyOf(repo, ...objectSegments(type))}/`;
    for await (const page of this.objects(prefix))
      for (const object of page) {
        const name = (object.Key ?? "").split("/").at(-1) ?? "";
        const time = object.LastModified?.getTime();
        if (time !== undefined && isBlobId(name)) times.set(name, time);
      }
    return times;
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
