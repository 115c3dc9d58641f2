import type { S3Failure } from "./s3-bucket.js";
import { statusOf } from "./s3-bucket.js";

export interface FailureContext {
  /** The endpoint given (--s3-endpoint), or undefined for AWS. */
  endpoint: string | undefined;
  /** The host the request went to (for AWS: the bucket's virtual host). */
  host: string;
  bucket: string;
  /** The access key the request was signed with, when one was found. */
  accessKeyId: string | undefined;
}

const TLS_TRUST_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

const CREDENTIAL_PLACES =
  "looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the profile AWS_PROFILE names (else 'default') in ~/.aws/credentials and ~/.aws/config, AWS_WEB_IDENTITY_TOKEN_FILE, and the container and instance metadata services";

/**
 * What a person can do about a failure to reach a bucket: the cause in words (no credentials and
 * where they were looked for, an unknown key, a wrong secret, access denied, no such bucket,
 * connection refused, a name that does not resolve, TLS) and what to try.
 */
export function explainS3Failure(error: unknown, at: FailureContext): string {
  const failure = error as S3Failure;
  const name = failure.name ?? "";
  const code = failure.code ?? "";
  const key = at.accessKeyId ? `access key ${at.accessKeyId}` : "the access key";
  const endpointHint = at.endpoint
    ? "check --s3-endpoint"
    : "no --s3-endpoint is given, so AWS S3 is used: for Ceph RGW, MinIO or another S3 service pass --s3-endpoint URL (or set AWS_ENDPOINT_URL_S3)";
  if (name === "CredentialsProviderError")
    return `no S3 credentials found (${CREDENTIAL_PLACES}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE`;
  if (name === "InvalidAccessKeyId")
    return `${key} is not known to ${at.host}: check AWS_ACCESS_KEY_ID (or the profile's aws_access_key_id)`;
  if (name === "SignatureDoesNotMatch")
    return `the secret key does not match ${key} (${at.host} refused the signature): check AWS_SECRET_ACCESS_KEY (or the profile's aws_secret_access_key)`;
  if (name === "AccessDenied" || statusOf(error) === 403)
    return `access denied to bucket ${at.bucket} for ${key}: the key is valid but may not use this bucket (it belongs to another user, or a bucket policy refuses it)`;
  if (name === "NoSuchBucket") return `bucket ${at.bucket} does not exist at ${at.host}`;
  if (code === "ECONNREFUSED")
    return `connection refused by ${at.host}: nothing listens there; is the S3 service running? (${endpointHint})`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN")
    return `the name ${(error as { hostname?: string }).hostname ?? at.host} does not resolve (${code}); ${endpointHint}`;
  if (code === "EPROTO" || code === "ECONNRESET")
    return `the connection to ${at.host} failed during the TLS handshake (${code}): the endpoint may not speak TLS on this port (try http://), or a proxy is in the way`;
  if (TLS_TRUST_CODES.has(code))
    return `the TLS certificate of ${at.host} is not accepted (${code}): give its CA certificate in NODE_EXTRA_CA_CERTS, and use the name the certificate is for`;
  if (code === "ETIMEDOUT" || name === "TimeoutError")
    return `no answer from ${at.host} in time: a firewall may drop the packets, or the service hangs (Ceph RGW does while its OSDs are down)`;
  const status = statusOf(error);
  if (status !== undefined && status >= 500)
    return `${at.host} answered HTTP ${status} (${name || "no error code"}): the service is up but failing; see its logs`;
  return `${name || code || "error"}: ${failure.message ?? "no message"}${status ? ` (HTTP ${status})` : ""}; ${endpointHint}`;
}

const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

/**
 * The service could not be reached or is failing (it may come back), as opposed to a setting that
 * is wrong (credentials, access, TLS trust) and will not get better by waiting.
 */
export function isUnreachable(error: unknown): boolean {
  const failure = error as S3Failure;
  const status = statusOf(error);
  return (
    UNREACHABLE_CODES.has(failure.code ?? "") ||
    failure.name === "TimeoutError" ||
    (status !== undefined && status >= 500)
  );
}
