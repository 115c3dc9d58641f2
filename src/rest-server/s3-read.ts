import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GetObjectCommand, type GetObjectCommandOutput, type S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { parseRange } from "./range.js";
import type { ObjectType } from "./repo-path.js";
import { CONNECT_TIMEOUT_MS, isNotFound, RESPONSE_TIMEOUT_MS, type S3Bucket, statusOf } from "./s3-bucket.js";
import type { OpenedObject } from "./storage.js";
import { UpstreamPool, type UpstreamResponse } from "./upstream-get.js";
import { noteBodyBytes } from "./young-gc.js";

/**
 * How long a redirect's signed URL is good for: the client follows it at once, so this only has to
 * cover clock skew. A leaked URL reads one pack, which restic has encrypted.
 */
const READ_URL_SECONDS = 600;
/** The URLs of our own GETs are used at once. */
const GET_URL_SECONDS = 60;

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

/**
 * The read path of S3Storage: a GET of a signed URL on our own connection (upstream-get.ts: the
 * body goes to the client through reused buffers), the SDK only for an answer that path does not
 * take; ranges S3 reads differently asked for again in its form; redirect URLs for clients.
 */
export class S3Reader {
  private readonly upstream = new UpstreamPool({
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    responseTimeoutMs: RESPONSE_TIMEOUT_MS,
  });

  /** `signer`: signs the redirects' URLs (for the endpoint the clients reach), when reads are redirected. */
  constructor(
    private readonly bucket: S3Bucket,
    private readonly signer: S3Client | undefined,
  ) {}

  async open(Key: string, rangeHeader: string | undefined, head: boolean): Promise<OpenedObject | undefined> {
    if (head) return this.fromHead(Key, rangeHeader);
    return this.read(Key, rangeHeader, false);
  }

  /** The whole object as a stream (the mirror's copies), or undefined when absent. */
  async stream(Key: string): Promise<{ size: number; body: Readable } | undefined> {
    let answer: GetObjectCommandOutput;
    try {
      answer = await this.bucket.client.send(new GetObjectCommand({ Bucket: this.bucket.name, Key }));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.bucket.unavailable(error, `GET ${Key}`);
    }
    return { size: answer.ContentLength ?? 0, body: answer.Body as Readable };
  }

  private async fromHead(Key: string, rangeHeader: string | undefined): Promise<OpenedObject | undefined> {
    const size = await this.bucket.headSize(Key);
    if (size === undefined) return undefined;
    return { size, range: parseRange(rangeHeader, size), send: async () => {}, close: async () => {} };
  }

  private async read(
    Key: string,
    rangeHeader: string | undefined,
    retried: boolean,
  ): Promise<OpenedObject | undefined> {
    const fetched = await this.fetch(Key, forwardableRange(rangeHeader));
    if (fetched === "missing") return undefined;
    // Past the end (or an empty object): our answer is 416 with the size, as for a directory.
    if (fetched === "past-end") return this.fromHead(Key, rangeHeader);
    return this.answered(Key, rangeHeader, retried, fetched);
  }

  private async fetch(Key: string, Range: string | undefined): Promise<Fetched | "missing" | "past-end"> {
    let answer: UpstreamResponse;
    try {
      const url = await this.signedGet(this.bucket.client, Key, GET_URL_SECONDS);
      answer = await this.upstream.get(new URL(url), Range);
    } catch (error) {
      throw this.bucket.unavailable(error, `GET ${Key}`);
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
      answer = await this.bucket.client.send(
        new GetObjectCommand({ Bucket: this.bucket.name, Key, ...(Range ? { Range } : {}) }),
      );
    } catch (error) {
      if (isNotFound(error)) return "missing";
      if (statusOf(error) === 416) return "past-end";
      throw this.bucket.unavailable(error, `GET ${Key}`);
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
    Key: string,
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
    if (retried) throw this.bucket.unavailable(new Error("the storage ignored Range"), `GET ${Key}`);
    return this.read(Key, `bytes=${range.start}-${range.end}`, true);
  }

  private signedGet(client: S3Client, Key: string, expiresIn: number): Promise<string> {
    const command = new GetObjectCommand({ Bucket: this.bucket.name, Key });
    return this.bucket.call(`SIGN ${Key}`, () => getSignedUrl(client, command, { expiresIn }));
  }

  /**
   * With redirected reads: a signed URL to GET a data blob from the storage itself. The client sends
   * its Range header again (it is not signed); a form S3 reads differently is answered by us.
   */
  async readUrl(Key: string, type: ObjectType, rangeHeader: string | undefined): Promise<string | undefined> {
    if (!this.signer || type !== "data") return undefined;
    if (rangeHeader !== undefined && forwardableRange(rangeHeader) !== rangeHeader.trim()) return undefined;
    return this.signedGet(this.signer, Key, READ_URL_SECONDS);
  }
}
