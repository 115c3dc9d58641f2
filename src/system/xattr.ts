import { StowageError } from "./errors.js";
import { run } from "./exec.js";

/**
 * Node has no xattr API: attr's getfattr and setfattr own the job. File and attribute names are
 * byte strings (one char per byte, see tar/names.ts), values raw bytes.
 */
export type Xattrs = Map<string, Buffer>;

/** getfattr, under LC_ALL=C, writes every byte outside printable ASCII of a name as an octal escape. */
function unescapeName(text: string): string {
  return text.replace(/\\([0-7]{3})|\\\\/g, (_match, octal: string | undefined) =>
    octal ? String.fromCharCode(Number.parseInt(octal, 8)) : "\\",
  );
}

function decodeValue(text: string): Buffer {
  if (text.startsWith("0s")) return Buffer.from(text.slice(2), "base64");
  if (text.startsWith("0x")) return Buffer.from(text.slice(2), "hex");
  if (text.startsWith('"') && text.endsWith('"')) return Buffer.from(text.slice(1, -1), "latin1");
  return Buffer.from(text, "latin1");
}

/**
 * `getfattr --dump` output parsed as it streams, one `# file:` block at a time: nothing is cut at
 * any size, and memory holds only the attributes themselves.
 */
export class GetfattrParser {
  readonly files = new Map<string, Xattrs>();
  private partial = "";
  private current: Xattrs | undefined;

  push(chunk: Buffer): void {
    const text = this.partial + chunk.toString("latin1");
    const lines = text.split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) this.line(line);
  }

  end(): Map<string, Xattrs> {
    if (this.partial !== "") this.line(this.partial);
    this.partial = "";
    return this.files;
  }

  private line(line: string): void {
    if (line.startsWith("# file: ")) {
      this.current = new Map();
      this.files.set(unescapeName(line.slice(8)), this.current);
    } else if (this.current && line !== "") {
      const equals = line.indexOf("=");
      if (equals < 0) this.current.set(unescapeName(line), Buffer.alloc(0));
      else this.current.set(unescapeName(line.slice(0, equals)), decodeValue(line.slice(equals + 1)));
    }
  }
}

/** Parse a whole `getfattr --absolute-names --dump` output: file -> name -> value. */
export function parseGetfattr(output: string | Buffer): Map<string, Xattrs> {
  const parser = new GetfattrParser();
  parser.push(typeof output === "string" ? Buffer.from(output, "latin1") : output);
  return parser.end();
}

const GETFATTR_DUMP = ["--no-dereference", "--dump", "--match=-", "--encoding=base64", "--absolute-names"];
const VANISHED = /: No such file or directory$/;

/** getfattr failed on some files for another reason than their being gone. */
export class XattrReadError extends StowageError {
  constructor(lines: readonly string[]) {
    super("EXEC_FAILED", `cannot read extended attributes: ${lines.slice(0, 5).join("; ")}`);
  }
}

/**
 * Every extended attribute (all namespaces; as root trusted.* too) of each of these files (absolute
 * paths as byte strings), by one getfattr: the names reach it as raw bytes on its standard input
 * through `xargs -0` (an argument list from Node is always UTF-8). Files without attributes, and
 * files that vanished meanwhile, are absent from the result; any other failure is an error.
 */
export async function readXattrsOf(files: readonly string[]): Promise<Map<string, Xattrs>> {
  const parser = new GetfattrParser();
  let stderr = "";
  await run("xargs", ["-0", "-r", "getfattr", ...GETFATTR_DUMP, "--"], {
    input: Buffer.from(`${files.join("\0")}\0`, "latin1"),
    env: { ...process.env, LC_ALL: "C" },
    // xargs exits 123 when getfattr exited 1: a file was gone, or something worse (see stderr).
    okStatuses: [0, 123],
    onStdout: (chunk) => parser.push(chunk),
    onStderr: (chunk) => {
      stderr += chunk.toString("latin1");
    },
  });
  const problems = stderr.split("\n").filter((line) => line !== "" && !VANISHED.test(line));
  if (problems.length > 0) throw new XattrReadError(problems);
  return parser.end();
}

/** One attribute of several files in one call; files without it are absent from the map. */
export async function readXattr(files: readonly string[], name: string): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  if (files.length === 0) return found;
  // getfattr exits 1 when some file lacks the attribute.
  const result = await run(
    "getfattr",
    ["--no-dereference", `--name=${name}`, "--encoding=base64", "--absolute-names", "--", ...files],
    { okStatuses: [0, 1], env: { ...process.env, LC_ALL: "C" } },
  );
  for (const [file, attrs] of parseGetfattr(result.stdout)) {
    const value = attrs.get(name);
    if (value) found.set(Buffer.from(file, "latin1").toString("utf8"), value);
  }
  return found;
}

/** A name as getfattr writes it (and setfattr --restore reads it): octal escapes for the rest. */
function escapeName(name: string): string {
  let out = "";
  for (let i = 0; i < name.length; i++) {
    const byte = name.charCodeAt(i);
    out +=
      byte >= 0x21 && byte <= 0x7e && byte !== 0x5c && byte !== 0x3d
        ? name[i]
        : `\\${byte.toString(8).padStart(3, "0")}`;
  }
  return out;
}

/**
 * Set extended attributes on many files (paths as byte strings) with one `setfattr --restore`,
 * values as raw bytes; the dump goes to it as a stream, never built whole.
 */
export async function writeXattrs(files: ReadonlyMap<string, ReadonlyMap<string, Buffer>>): Promise<void> {
  if (files.size === 0) return;
  async function* dump(): AsyncGenerator<Buffer> {
    for (const [file, attrs] of files) {
      let block = `# file: ${escapeName(file)}\n`;
      for (const [name, value] of attrs) block += `${escapeName(name)}=0s${value.toString("base64")}\n`;
      yield Buffer.from(`${block}\n`, "latin1");
    }
  }
  await run("setfattr", ["--restore=-"], { input: dump(), env: { ...process.env, LC_ALL: "C" } });
}
