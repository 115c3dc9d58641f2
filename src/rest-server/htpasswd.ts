import { createHash, timingSafeEqual } from "node:crypto";

/** Usernames rest-server accepts; lines with other names are ignored. */
const USERNAME = /^[\p{L}\d@._-]+$/u;
const BCRYPT = /^\$2([aby])\$(\d\d)\$[./A-Za-z0-9]{53}$/;
/** bcrypt accepts costs 4..31; Apache's `htpasswd -B -C` writes 4..17. */
const MIN_COST = 4;
const MAX_COST = 31;

export type PasswordHash = { kind: "bcrypt"; hash: string; cost: number } | { kind: "sha1"; digest: Buffer };

export interface HtpasswdParseResult {
  users: Map<string, PasswordHash>;
  /** Lines skipped, with the reason (for a warning in the log; never the hash itself). */
  skipped: Array<{ line: number; reason: string }>;
}

/** Name the format of a hash we do not verify, for the warning (the hash itself is never shown). */
export function describeUnsupportedHash(text: string): string {
  if (text.startsWith("$apr1$")) return "Apache MD5 ($apr1$, htpasswd -m)";
  if (text.startsWith("$1$")) return "MD5-crypt ($1$)";
  if (text.startsWith("$5$")) return "SHA-256-crypt ($5$)";
  if (text.startsWith("$6$")) return "SHA-512-crypt ($6$)";
  if (text.startsWith("$2")) return "malformed bcrypt";
  if (text.startsWith("{SHA}")) return "malformed {SHA}";
  if (/^[./0-9A-Za-z]{13}$/.test(text)) return "DES crypt (htpasswd -d) or plain text";
  return "plain text or unknown (htpasswd -p)";
}

function parseHash(text: string): PasswordHash | undefined {
  const bcrypt = BCRYPT.exec(text);
  if (bcrypt) {
    const cost = Number(bcrypt[2]);
    if (cost < MIN_COST || cost > MAX_COST) return undefined;
    // $2y$ (crypt_blowfish, Apache's htpasswd -B) is the same algorithm as $2b$, but the native
    // bcrypt module only verifies the $2a$/$2b$ spellings: verify it under the $2b$ name.
    return { kind: "bcrypt", hash: bcrypt[1] === "y" ? `$2b$${text.slice(4)}` : text, cost };
  }
  if (text.startsWith("{SHA}")) {
    const encoded = text.slice(5);
    const digest = Buffer.from(encoded, "base64");
    if (digest.length === 20 && /^[A-Za-z0-9+/]{27}=$/.test(encoded)) return { kind: "sha1", digest };
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
    const hashText = line.slice(colon + 1);
    const hash = colon > 0 ? parseHash(hashText) : undefined;
    if (colon <= 0) skip("not in user:hash form");
    else if (!USERNAME.test(user)) skip("invalid user name");
    else if (!hash) skip(`unsupported hash format for user ${user}: ${describeUnsupportedHash(hashText)}`);
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

const BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/**
 * The cost an unknown user's login is checked at: the most common cost among the file's bcrypt
 * users (ties to the higher), 10 when there are none. A wrong password for a typical user then
 * costs the same as an unknown name.
 */
export function typicalCost(users: Iterable<PasswordHash>): number {
  const counts = new Map<number, number>();
  for (const hash of users)
    if (hash.kind === "bcrypt") counts.set(hash.cost, (counts.get(hash.cost) ?? 0) + 1);
  let best = 10;
  let bestCount = 0;
  for (const [cost, count] of counts) {
    if (count > bestCount || (count === bestCount && cost > best)) [best, bestCount] = [cost, count];
  }
  return best;
}

/** A well-formed bcrypt hash with random salt and digest: comparing against it costs a real login. */
export function dummyBcryptHash(cost: number, random: (size: number) => Buffer): string {
  const body = [...random(53)].map((byte) => BCRYPT_ALPHABET[byte % 64]).join("");
  // The salt's last character carries only 2 significant bits; keep it canonical (".", "O", "e", "u").
  const canonical = `${body.slice(0, 21)}${".Oeu"[body.charCodeAt(21) % 4]}${body.slice(22)}`;
  return `$2b$${String(cost).padStart(2, "0")}$${canonical}`;
}
