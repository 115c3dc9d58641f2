import http from "node:http";
import https from "node:https";
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { Logger } from "../system/log.js";
import { HttpError } from "./http-error.js";

export const CONNECT_TIMEOUT_MS = 5_000;
/** A storage that stops answering (RGW with its OSD gone) must fail the request, not hang it. */
export const RESPONSE_TIMEOUT_MS = 120_000;

export interface S3Failure {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

export const statusOf = (error: unknown) => (error as S3Failure).$metadata?.httpStatusCode;
export const isNotFound = (error: unknown) =>
  statusOf(error) === 404 || ["NotFound", "NoSuchKey"].includes((error as S3Failure).name ?? "");

/** A client for an endpoint (path-style), or for AWS (virtual-host style) without one. */
export function newClient(endpoint: string | undefined, profile?: string): S3Client {
  const agent = { keepAlive: true, maxSockets: 512 };
  const region =
    process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? (endpoint ? "us-east-1" : undefined);
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  return new S3Client({
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    ...(region ? { region } : {}),
    ...(profile ? { profile } : {}),
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

/** One bucket through one client: the calls both the read and the write path make. */
export class S3Bucket {
  constructor(
    readonly client: S3Client,
    readonly name: string,
    private readonly log: Logger,
  ) {}

  /** An S3 failure that is not the request's fault: the storage is unavailable (503, restic retries). */
  unavailable(error: unknown, what: string): HttpError {
    const failure = error as S3Failure;
    this.log.warn(
      { action: "s3.failed", what, status: statusOf(error), err: failure.name ?? failure.message },
      "S3 request failed",
    );
    return new HttpError(503, "storage unavailable");
  }

  async call<T>(what: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw this.unavailable(error, what);
    }
  }

  /** An object's size, or undefined when there is none under the key. */
  async headSize(Key: string): Promise<number | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.name, Key }));
      return head.ContentLength ?? 0;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.unavailable(error, `HEAD ${Key}`);
    }
  }
}
