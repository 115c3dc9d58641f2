/**
 * Path <-> unit-name escaping, identical to `systemd-escape --path` / `--unescape --path`.
 * Works on UTF-8 bytes: every byte outside [A-Za-z0-9:_.] becomes `\xNN` (lowercase), `/` becomes
 * `-`, and a leading `.` is escaped too.
 */

export class EscapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EscapeError";
  }
}

const isKept = (byte: number, first: boolean) =>
  (byte >= 0x30 && byte <= 0x39) || // 0-9
  (byte >= 0x41 && byte <= 0x5a) || // A-Z
  (byte >= 0x61 && byte <= 0x7a) || // a-z
  byte === 0x3a || // :
  byte === 0x5f || // _
  (byte === 0x2e && !first); // . (not as the first character)

/** Collapse `//`, drop `.` components and the trailing `/`; reject relative paths and `..`. */
export function normalizePath(input: string): string {
  if (input === "") throw new EscapeError("empty path");
  if (!input.startsWith("/")) throw new EscapeError(`not an absolute path: ${JSON.stringify(input)}`);
  if (input.includes("\0")) throw new EscapeError("path contains a NUL byte");
  const parts = input.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.includes("..")) throw new EscapeError(`path contains '..': ${JSON.stringify(input)}`);
  return `/${parts.join("/")}`;
}

export function escapePath(input: string): string {
  const path = normalizePath(input);
  if (path === "/") return "-";
  const bytes = Buffer.from(path.slice(1), "utf8");
  let out = "";
  for (const [index, byte] of bytes.entries()) {
    if (byte === 0x2f) out += "-";
    else if (isKept(byte, index === 0)) out += String.fromCharCode(byte);
    else out += `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

/** Decode a name; throws unless it is the canonical escape of a normalized absolute path. */
export function unescapePath(name: string): string {
  if (name === "") throw new EscapeError("empty name");
  if (name === "-") return "/";
  const bytes: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const char = name[i] as string;
    if (char === "-") {
      bytes.push(0x2f);
    } else if (char === "\\") {
      const hex = name.slice(i + 1, i + 4);
      if (!/^x[0-9a-fA-F]{2}$/.test(hex))
        throw new EscapeError(`invalid escape sequence in ${JSON.stringify(name)}`);
      bytes.push(Number.parseInt(hex.slice(1), 16));
      i += 3;
    } else {
      bytes.push(...Buffer.from(char, "utf8"));
    }
  }
  const decoded = Buffer.from(bytes);
  const path = `/${decoded.toString("utf8")}`;
  if (decoded.includes(0))
    throw new EscapeError(`name ${JSON.stringify(name)} decodes to a path with a NUL byte`);
  if (!Buffer.from(path.slice(1), "utf8").equals(decoded)) {
    throw new EscapeError(`name ${JSON.stringify(name)} does not decode to valid UTF-8`);
  }
  let canonical: string;
  try {
    canonical = escapePath(path);
  } catch (error) {
    throw new EscapeError(
      `name ${JSON.stringify(name)} decodes to an invalid path: ${(error as Error).message}`,
    );
  }
  if (canonical !== name) {
    throw new EscapeError(
      `name ${JSON.stringify(name)} is not canonical (the canonical name of ${JSON.stringify(path)} is ${JSON.stringify(canonical)})`,
    );
  }
  return path;
}
