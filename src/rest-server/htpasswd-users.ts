import { chown, open, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../system/atomic-write.js";
import { ConfigError, isErrno } from "../system/errors.js";
import { loadBcrypt } from "./bcrypt-compare.js";

/** Apache's `htpasswd -B` default cost; restic/rest-server's image uses it for create_user. */
export const DEFAULT_BCRYPT_COST = 5;

function checkName(name: string): void {
  if (name === "" || name.includes(":") || /[\r\n]/.test(name)) {
    throw new ConfigError(`user name ${JSON.stringify(name)}: must be non-empty, without ':' or line breaks`);
  }
}

async function linesOf(file: string): Promise<Buffer[] | undefined> {
  try {
    return splitLines(await readFile(file));
  } catch (error) {
    if (isErrno(error, "ENOENT")) return undefined;
    throw error;
  }
}

/** Lines without their "\n" (a "\r" stays with its line); a last line without "\n" is kept. */
function splitLines(content: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let at = content.indexOf(10); at >= 0; at = content.indexOf(10, start)) {
    lines.push(content.subarray(start, at));
    start = at + 1;
  }
  if (start < content.length) lines.push(content.subarray(start));
  return lines;
}

function isLineOf(line: Buffer, name: string): boolean {
  const prefix = Buffer.from(`${name}:`);
  return line.length >= prefix.length && line.subarray(0, prefix.length).equals(prefix);
}

/**
 * An empty password file, unless there is one: 0600 (it holds password hashes: upstream's #318)
 * and owned by `owner`, who runs the server. True when it was made here.
 */
export async function createPasswordFile(
  file: string,
  owner: { uid: number; gid: number },
): Promise<boolean> {
  try {
    const handle = await open(file, "wx", 0o600);
    await handle.close();
  } catch (error) {
    if (isErrno(error, "EEXIST")) return false;
    throw error;
  }
  await chown(file, owner.uid, owner.gid);
  return true;
}

/**
 * Write the file's new lines atomically, keeping its mode and owner; a missing file is made first as
 * createPasswordFile makes it, owned by its directory's owner.
 */
async function writeLines(file: string, lines: readonly Buffer[], existed: boolean): Promise<void> {
  if (!existed) await createPasswordFile(file, await stat(path.dirname(file)));
  const content = Buffer.concat(lines.flatMap((line) => [line, Buffer.from("\n")]));
  await writeFileAtomic(file, content, { keepOwnership: true });
}

/** Add a user or replace its password (bcrypt, `$2y$` as Apache's htpasswd -B writes). True if new. */
export async function setUser(
  file: string,
  name: string,
  password: string,
  cost = DEFAULT_BCRYPT_COST,
): Promise<boolean> {
  checkName(name);
  const lines = await linesOf(file);
  const bcrypt = await loadBcrypt();
  // $2b$ and Apache's $2y$ are the same algorithm; htpasswd writes $2y$.
  const hash = (await bcrypt.hash(password, cost)).replace(/^\$2b\$/, "$2y$");
  const line = Buffer.from(`${name}:${hash}`);
  const at = (lines ?? []).findIndex((existing) => isLineOf(existing, name));
  const next = [...(lines ?? [])];
  if (at >= 0) next[at] = line;
  else next.push(line);
  await writeLines(file, next, lines !== undefined);
  return at < 0;
}

/** Remove a user. False when it was not there (the file is then left untouched). */
export async function deleteUser(file: string, name: string): Promise<boolean> {
  checkName(name);
  const lines = await linesOf(file);
  if (lines === undefined) throw new ConfigError(`${file} does not exist`);
  const kept = lines.filter((line) => !isLineOf(line, name));
  if (kept.length === lines.length) return false;
  await writeLines(file, kept, true);
  return true;
}
