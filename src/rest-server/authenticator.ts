import { createHash, randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { ConfigError } from "../system/errors.js";
import type { Logger } from "../system/log.js";
import { type BcryptCompare, loadBcrypt } from "./bcrypt-compare.js";
import {
  dummyBcryptHash,
  type PasswordHash,
  parseBasicAuth,
  parseHtpasswd,
  sha1Matches,
  typicalCost,
} from "./htpasswd.js";

const CACHE_TTL_MS = 5 * 60 * 1000;
const CACHE_MAX_ENTRIES = 10_000;
/** How often a request may stat the htpasswd file to notice edits. */
const CHANGE_CHECK_MS = 2_000;

/**
 * Checks Basic credentials against an htpasswd file. Verified logins are cached (keyed by a salted
 * hash of user and password) so restores are not bound by bcrypt; unknown users are checked against
 * a dummy hash of the users' typical cost, so the answer's timing does not reveal which users exist.
 */
export class Authenticator {
  private users = new Map<string, PasswordHash>();
  private cache = new Map<string, number>();
  private readonly salt = randomBytes(16);
  private fileStamp = "";
  private lastCheck = 0;
  private dummyHash = "";

  private constructor(
    readonly file: string,
    private readonly log: Logger,
    private readonly compare: BcryptCompare,
  ) {}

  static async load(file: string, log: Logger): Promise<Authenticator> {
    const bcrypt = await loadBcrypt();
    if (bcrypt.kind !== "native") {
      log.warn(
        { action: "bcrypt", reason: bcrypt.fallbackReason },
        "native bcrypt unavailable; using bcryptjs (slower)",
      );
    }
    const auth = new Authenticator(file, log, bcrypt.compare);
    await auth.reload();
    return auth;
  }

  /** Re-read the file (SIGHUP, or its mtime/size changed). A failed reload keeps the old users. */
  async reload(): Promise<void> {
    let text: string;
    let stamp: string;
    try {
      const info = await stat(this.file);
      stamp = `${info.mtimeMs}:${info.size}:${info.ino}`;
      text = await readFile(this.file, "utf8");
    } catch (error) {
      throw new ConfigError(`cannot load htpasswd file ${this.file}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const { users, skipped } = parseHtpasswd(text);
    for (const entry of skipped)
      this.log.warn({ action: "htpasswd", file: this.file, ...entry }, "line ignored");
    this.dummyHash = dummyBcryptHash(typicalCost(users.values()), randomBytes);
    this.users = users;
    this.cache.clear();
    this.fileStamp = stamp;
    this.log.info({ action: "htpasswd", file: this.file, users: users.size }, "htpasswd loaded");
  }

  private async reloadIfChanged(): Promise<void> {
    const now = Date.now();
    if (now - this.lastCheck < CHANGE_CHECK_MS) return;
    this.lastCheck = now;
    try {
      const info = await stat(this.file);
      if (`${info.mtimeMs}:${info.size}:${info.ino}` !== this.fileStamp) await this.reload();
    } catch (error) {
      this.log.error({ action: "htpasswd", err: error }, "htpasswd reload failed; keeping the loaded users");
    }
  }

  /** The authenticated user name, or undefined for missing, malformed or wrong credentials. */
  async authenticate(header: string | undefined): Promise<string | undefined> {
    const credentials = parseBasicAuth(header);
    if (!credentials) return undefined;
    await this.reloadIfChanged();
    const key = createHash("sha256")
      .update(this.salt)
      .update(`${credentials.user}\0${credentials.password}`)
      .digest("base64");
    const now = Date.now();
    const cached = this.cache.get(key);
    if (cached !== undefined && cached > now) return credentials.user;
    if (cached !== undefined) this.cache.delete(key);

    const entry = this.users.get(credentials.user);
    const ok = await this.verify(entry, credentials.password);
    if (!ok || !entry) return undefined;
    this.remember(key, now);
    return credentials.user;
  }

  private async verify(entry: PasswordHash | undefined, password: string): Promise<boolean> {
    if (!entry) {
      await this.compare(password, this.dummyHash);
      return false;
    }
    if (entry.kind === "sha1") return sha1Matches(entry.digest, password);
    return this.compare(password, entry.hash);
  }

  private remember(key: string, now: number): void {
    if (this.cache.size >= CACHE_MAX_ENTRIES) {
      for (const [oldKey, expires] of this.cache) if (expires <= now) this.cache.delete(oldKey);
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
    }
    this.cache.set(key, now + CACHE_TTL_MS);
  }
}
