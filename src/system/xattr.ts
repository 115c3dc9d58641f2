import { run } from "./exec.js";

/** Node has no xattr API: attr's getfattr owns the job. Values are raw bytes. */
export type Xattrs = Map<string, Buffer>;

/** getfattr writes special characters of file names as octal escapes and "\\" as "\\\\". */
function unescapeName(text: string): string {
  const bytes: Buffer[] = [];
  const pattern = /\\([0-7]{3})|\\\\|[^\\]+|\\/gu;
  for (const match of text.matchAll(pattern)) {
    if (match[1]) bytes.push(Buffer.from([Number.parseInt(match[1], 8)]));
    else if (match[0] === "\\\\") bytes.push(Buffer.from("\\"));
    else bytes.push(Buffer.from(match[0], "utf8"));
  }
  return Buffer.concat(bytes).toString("utf8");
}

function decodeValue(text: string): Buffer {
  if (text.startsWith("0s")) return Buffer.from(text.slice(2), "base64");
  if (text.startsWith("0x")) return Buffer.from(text.slice(2), "hex");
  if (text.startsWith('"') && text.endsWith('"')) return Buffer.from(text.slice(1, -1), "utf8");
  return Buffer.from(text, "utf8");
}

/** Parse `getfattr --absolute-names -e base64` output: file -> name -> value. */
export function parseGetfattr(output: string): Map<string, Xattrs> {
  const files = new Map<string, Xattrs>();
  let current: Xattrs | undefined;
  for (const line of output.split("\n")) {
    if (line.startsWith("# file: ")) {
      current = new Map();
      files.set(unescapeName(line.slice(8)), current);
    } else if (current && line !== "") {
      const equals = line.indexOf("=");
      if (equals < 0) current.set(line, Buffer.alloc(0));
      else current.set(line.slice(0, equals), decodeValue(line.slice(equals + 1)));
    }
  }
  return files;
}

/** Every extended attribute (all namespaces, as root incl. trusted.*) of every file under `dir`. */
export async function readXattrsTree(dir: string): Promise<Map<string, Xattrs>> {
  const result = await run("getfattr", [
    "--recursive",
    "--physical",
    "--no-dereference",
    "--dump",
    "--match=-",
    "--encoding=base64",
    "--absolute-names",
    "--",
    dir,
  ]);
  return parseGetfattr(result.stdout);
}

/** One attribute of several files in one call; files without it are absent from the map. */
export async function readXattr(files: readonly string[], name: string): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  if (files.length === 0) return found;
  // getfattr exits 1 when some file lacks the attribute.
  const result = await run(
    "getfattr",
    ["--no-dereference", `--name=${name}`, "--encoding=base64", "--absolute-names", "--", ...files],
    {
      okStatuses: [0, 1],
    },
  );
  for (const [file, attrs] of parseGetfattr(result.stdout)) {
    const value = attrs.get(name);
    if (value) found.set(file, value);
  }
  return found;
}

/** A file name as getfattr writes it (and setfattr --restore reads it): octal escapes for the rest. */
function escapeName(name: string): string {
  let out = "";
  for (const byte of Buffer.from(name, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x5c
        ? String.fromCharCode(byte)
        : `\\${byte.toString(8).padStart(3, "0")}`;
  }
  return out;
}

/** Set extended attributes on many files with one `setfattr --restore` (values as raw bytes). */
export async function writeXattrs(files: ReadonlyMap<string, ReadonlyMap<string, Buffer>>): Promise<void> {
  if (files.size === 0) return;
  const dump: string[] = [];
  for (const [file, attrs] of files) {
    dump.push(`# file: ${escapeName(file)}`);
    for (const [name, value] of attrs) dump.push(`${name}=0s${value.toString("base64")}`);
    dump.push("");
  }
  await run("setfattr", ["--restore=-"], { input: `${dump.join("\n")}\n` });
}
