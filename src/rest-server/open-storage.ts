import path from "node:path";
import type { Logger } from "../system/log.js";
import { FsStorage } from "./fs-storage.js";
import type { Storage } from "./storage.js";

export interface StorageSpec {
  /** A directory, or `s3://BUCKET[/PREFIX]`. */
  location: string;
  /** The flag that named it, for messages (`--storage`, `--mirror`). */
  flag: string;
  s3Endpoint: string | undefined;
  /** A profile of the AWS config files for its credentials (else the standard chain). */
  s3Profile?: string | undefined;
  /** Reads of data blobs answered with a redirect to S3, signed for this endpoint (else s3Endpoint's). */
  s3RedirectReads?: { endpoint: string | undefined } | undefined;
  groupAccessible: boolean;
}

export const isS3Location = (location: string) => location.startsWith("s3://");

/** A directory, or a bucket (the S3 storage and its SDK loaded only then). */
export async function openStorage(spec: StorageSpec, log: Logger): Promise<Storage> {
  if (!isS3Location(spec.location))
    return new FsStorage(path.resolve(spec.location), { groupAccessible: spec.groupAccessible });
  const { S3Storage, parseS3Location } = await import("./s3-storage.js");
  return new S3Storage(parseS3Location(spec.location, spec.flag), {
    endpoint: spec.s3Endpoint,
    ...(spec.s3RedirectReads ? { redirectReads: spec.s3RedirectReads } : {}),
    ...(spec.s3Profile ? { profile: spec.s3Profile } : {}),
    flag: spec.flag,
    log,
  });
}
