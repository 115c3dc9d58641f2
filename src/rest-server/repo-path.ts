/** How a request URL maps onto a repository, a blob type and a blob name (pure; no I/O). */

export const BLOB_TYPES = ["data", "index", "keys", "locks", "snapshots"] as const;
export type BlobType = (typeof BLOB_TYPES)[number];
export type ObjectType = BlobType | "config";

const TYPE_NAMES: ReadonlySet<string> = new Set([...BLOB_TYPES, "config"]);
/** A folder named like an object type (it ends a repository path). */
export const isTypeName = (segment: string) => TYPE_NAMES.has(segment);
/** Repository path segments may nest at most this deep (`/alice/laptop/`). */
export const MAX_REPO_DEPTH = 2;
/** A segment becomes a directory name: at most NAME_MAX (255) bytes on Linux filesystems. */
export const MAX_SEGMENT_BYTES = 255;

export type Target =
  /** The repository itself: `/`, `/alice/`, `/alice/laptop/` (create). */
  | { kind: "repo"; repo: string[] }
  /** `/config` */
  | { kind: "config"; repo: string[] }
  /** `/{type}/` (list) */
  | { kind: "list"; repo: string[]; type: BlobType }
  /** `/{type}/{id}` */
  | { kind: "blob"; repo: string[]; type: BlobType; name: string };

export type PathResult = { ok: true; target: Target } | { ok: false; status: 400 | 404; message: string };

/**
 * Where an object lies below its repository, in restic's layout (its local and s3 backends and
 * rest-server share it): `config`, `data/<first 2 hex>/<id>`, `<type>/<id>`; without a name, the
 * type's folder. Both storages build their paths and keys from this one mapping.
 */
export function objectSegments(type: ObjectType, name?: string): string[] {
  if (type === "config") return ["config"];
  if (name === undefined) return [type];
  return type === "data" ? ["data", name.slice(0, 2), name] : [type, name];
}

/**
 * The repository (`""`, `alice`, `alice/laptop`) a stored object belongs to, from the segments of
 * its path below the storage's root (file name included); undefined when it is in no type folder
 * at a depth a repository can have.
 */
export function repoOfStoredPath(segments: readonly string[]): string | undefined {
  const typeIndex = segments.findIndex((segment) => TYPE_NAMES.has(segment));
  if (typeIndex < 0 || typeIndex > MAX_REPO_DEPTH) return undefined;
  return segments.slice(0, typeIndex).join("/");
}

/** 64 lower-case hex digits. A loop, not a regular expression: listings test every name they find. */
export function isBlobId(name: string): boolean {
  if (name.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = name.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

function decodeSegment(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/** A repository segment: not empty, not `.`/`..`, no NUL or `/`, and not hidden (protects `.htpasswd`, temp files). */
function badSegment(segment: string): string | undefined {
  if (segment === "") return "empty path segment";
  if (segment === "." || segment === "..") return "path segment '.' or '..' is not allowed";
  if (segment.includes("\0")) return "NUL in path";
  if (segment.includes("/")) return "encoded '/' in path segment";
  if (segment.startsWith(".")) return "path segments may not start with '.'";
  if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES)
    return `path segment longer than ${MAX_SEGMENT_BYTES} bytes`;
  return undefined;
}

const fail = (status: 400 | 404, message: string): PathResult => ({ ok: false, status, message });

/** Parse the path part of a request URL (still percent-encoded). */
export function parseRepoPath(rawPath: string): PathResult {
  if (!rawPath.startsWith("/")) return fail(400, "path must start with '/'");
  const rawSegments = rawPath.slice(1).split("/");
  if (rawSegments.at(-1) === "") rawSegments.pop();
  const segments: string[] = [];
  for (const raw of rawSegments) {
    const segment = decodeSegment(raw);
    if (segment === undefined) return fail(400, "malformed percent-encoding in path");
    const problem = badSegment(segment);
    if (problem) return fail(400, problem);
    segments.push(segment);
  }

  const typeIndex = segments.findIndex((segment) => TYPE_NAMES.has(segment));
  if (typeIndex === -1) {
    if (segments.length > MAX_REPO_DEPTH) return fail(404, "repository paths have at most 2 segments");
    return { ok: true, target: { kind: "repo", repo: segments } };
  }
  if (typeIndex > MAX_REPO_DEPTH) return fail(404, "repository paths have at most 2 segments");
  const repo = segments.slice(0, typeIndex);
  const type = segments[typeIndex] as ObjectType;
  const rest = segments.slice(typeIndex + 1);
  if (type === "config") {
    if (rest.length > 0) return fail(404, "not found");
    return { ok: true, target: { kind: "config", repo } };
  }
  if (rest.length === 0) return { ok: true, target: { kind: "list", repo, type } };
  const [name] = rest;
  if (rest.length > 1 || name === undefined) return fail(404, "not found");
  if (!isBlobId(name)) return fail(400, "invalid blob name: must be 64 lowercase hex characters");
  return { ok: true, target: { kind: "blob", repo, type, name } };
}

/** The repository's name as used in logs, metrics and quota keys: `alice/laptop`, or `` for the root repo. */
export function repoKey(repo: readonly string[]): string {
  return repo.join("/");
}
