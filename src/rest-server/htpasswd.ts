import { createHash, timingSafeEqual } from "node:crypto";

/** Usernames rest-server accepts; lines with other names are ignored. */
const USERNAME = /^[\p{L}\d@._-]+$/u;
const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

export type PasswordHash = { kind: "bcrypt"; hash: string; cost: number } | { kind: "sha1"; digest: Buffer };

export interface HtpasswdParseResult {
  users: Map<string, PasswordHash>;
  /** Lines skipped, with the reason (for a warning in the log; never the hash itself). */
  skipped: Array<{ line: number; reason: string }>;
}

function parseHash(text: string): PasswordHash | undefined {
  const bcrypt = BCRYPT.exec(text);
  if (bcrypt) return { kind: "bcrypt", hash: text, cost: Number(bcrypt[1]) };
  if (text.startsWith("{SHA}")) {
    const digest = Buffer.from(text.slice(5), "base64");
    if (digest.length === 20) return { kind: "sha1", digest };
  }
  return undefined;
}

/** Parse an htpasswd file's text: `user:hash` lines with bcrypt (`$2a$ $2b$ $2y$`) or `{SHA}` hashes. */
export function parseHtpasswd(text: string): HtpasswdParseResult {
  const users = new Map<string, PasswordHash>();
  const skipped: HtpasswdParseResult["skipped"] = [];
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const skip = (reason: string) => skipped.push({ line: index + 1, reason });
    const colon = line.indexOf(":");
    const user = line.slice(0, Math.max(colon, 0));
    const hash = colon > 0 ? parseHash(line.slice(colon + 1)) : undefined;
    if (colon <= 0) skip("not in user:hash form");
    else if (!USERNAME.test(user)) skip("invalid user name");
    else if (!hash) skip(`unsupported hash for user ${user}`);
    else users.set(user, hash);
  }
  return { users, skipped };
}

export function sha1Matches(digest: Buffer, password: string): boolean {
  return timingSafeEqual(createHash("sha1").update(password).digest(), digest);
}

/** Credentials from an `Authorization: Basic ...` header, or undefined if the header is malformed. */
export function parseBasicAuth(header: string | undefined): { user: string; password: string } | undefined {
  if (!header) return undefined;
  const match = /^Basic ([A-Za-z0-9+/]+={0,2})$/i.exec(header.trim());
  if (!match?.[1] || match[1].length % 4 !== 0) return undefined;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
