/**
 * File names are bytes, not text: a volume may hold `caf\xe9.txt` (Latin-1) beside UTF-8 names, and
 * GNU tar and restic keep both exactly. Inside the tar layer and the tools that use it a name is a
 * *byte string*: a JS string with one char (0-255) per byte, as Node's "latin1" encoding makes it.
 * Every string operation (split on "/", startsWith, sort) then works on bytes, and the kernel gets
 * exactly those bytes back through `fsPath`. Text from users (prefixes, config paths) enters
 * through `bytesOf`; names leave for people through `displayName`.
 */
import { isUtf8 } from "node:buffer";

/** A name as bytes, one char per byte (see above). */
export type ByteString = string;

/** The bytes of a UTF-8 text (a path from a config file or a flag), as a byte string. */
export function bytesOf(text: string): ByteString {
  return Buffer.from(text, "utf8").toString("latin1");
}

/** A byte string as the path argument of a `node:fs` call (a string would be re-encoded as UTF-8). */
export function fsPath(name: ByteString): Buffer {
  return Buffer.from(name, "latin1");
}

/** Are these bytes valid UTF-8 (so they mean the same text everywhere)? */
export function isUtf8Name(name: ByteString): boolean {
  return isUtf8(fsPath(name));
}

/** For messages: the UTF-8 text when the bytes are UTF-8, else every byte outside ASCII as \xNN. */
export function displayName(name: ByteString): string {
  const bytes = fsPath(name);
  if (isUtf8(bytes)) return bytes.toString("utf8");
  let out = "";
  for (const byte of bytes)
    out +=
      byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, "0")}`;
  return out;
}

/** A byte string decoded as UTF-8 text (for content known to be text, such as index paths). */
export function textOf(name: ByteString): string {
  return fsPath(name).toString("utf8");
}
