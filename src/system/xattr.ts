import { StowageError } from "./errors.js";
import { run } from "./exec.js";
import { LineReader } from "./line-reader.js";

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
  private files = new Map<string, Xattrs>();
  private readonly lines = new LineReader((line) => this.line(line), "latin1");
  private current: Xattrs | undefined;

  /** `onBatchEnd`: told at each BATCH_END line (XattrReader's), where `take` then gives the batch. */
  constructor(private readonly onBatchEnd?: () => void) {}

  /** The files parsed so far; the next ones go into a new map. */
  take(): Map<string, Xattrs> {
    const files = this.files;
    this.files = new Map();
    this.current = undefined;
    return files;
  }

  push(chunk: Buffer): void {
    this.lines.push(chunk);
  }

  end(): Map<string, Xattrs> {
    this.lines.end();
    return this.take();
  }

  private line(line: string): void {
    if (line === BATCH_END && this.onBatchEnd) this.onBatchEnd();
    else if (line.startsWith("# file: ")) {
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

const GETFATTR_DUMP = "getfattr --no-dereference --dump --match=- --encoding=base64 --absolute-names --";
const VANISHED = /: No such file or directory$/;
/** What the reader prints after each batch: no getfattr line looks like it (attribute names have a namespace). */
const BATCH_END = "#end";
/**
 * One long-lived reader for a whole walk: each batch comes as "<length>\n" and that many bytes of
 * NUL-terminated names, which `head -c` hands to `xargs -0 getfattr`, then a BATCH_END line. The
 * processes per batch are forked by this small bash, not by us: a fork of a Node process with a
 * big heap costs a copy-on-write fault on every page it writes afterwards.
 */
const READER_SCRIPT = `while IFS= read -r length; do head -c "$length" | xargs -0 -r ${GETFATTR_DUMP}; echo '${BATCH_END}'; done`;

/** getfattr failed on some files for another reason than their being gone. */
export class XattrReadError extends StowageError {
  constructor(lines: readonly string[]) {
    super("EXEC_FAILED", `cannot read extended attributes: ${lines.slice(0, 5).join("; ")}`);
  }
}

/** Buffers written to a child's standard input as they are pushed, until `end`. */
class InputFeed implements AsyncIterable<Buffer> {
  private readonly chunks: Buffer[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      for (let chunk = this.chunks.shift(); chunk; chunk = this.chunks.shift()) yield chunk;
      if (this.ended) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }
}

/**
 * Every extended attribute (all namespaces; as root trusted.* too) of batches of files (absolute
 * paths as byte strings), read by getfattr in one long-lived helper: the names reach it as raw
 * bytes on its standard input (an argument list from Node is always UTF-8), and the answers come
 * back in order. Files without attributes, and files that vanished meanwhile, are absent from a
 * batch's result; any other failure is an error. `close` must always run.
 */
export class XattrReader {
  private readonly input = new InputFeed();
  private readonly parser = new GetfattrParser(() => this.batchEnded());
  private readonly waiting: Array<{
    resolve: (files: Map<string, Xattrs>) => void;
    reject: (error: Error) => void;
  }> = [];
  private readonly problems: string[] = [];
  private readonly stderr = new LineReader((line) => {
    if (line !== "" && !VANISHED.test(line) && this.problems.length < 5) this.problems.push(line);
  }, "latin1");
  private failure: Error | undefined;
  private readonly exited: Promise<void>;

  constructor() {
    this.exited = run("bash", ["-c", READER_SCRIPT], {
      input: this.input,
      env: { ...process.env, LC_ALL: "C" },
      onStdout: (chunk) => this.parser.push(chunk),
      onStderr: this.stderr.push,
    }).then(
      () => this.fail(new XattrReadError(["the reader ended before answering"])),
      (error: Error) => this.fail(error),
    );
  }

  /** The attributes of these files, once getfattr has gone through all of them. */
  read(files: readonly string[]): Promise<Map<string, Xattrs>> {
    if (this.failure) return Promise.reject(this.failure);
    const names = Buffer.from(`${files.join("\0")}\0`, "latin1");
    this.input.push(Buffer.concat([Buffer.from(`${names.length}\n`), names]));
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /** Ends the helper and waits for it; a failure of its last batches is thrown here. */
  async close(): Promise<void> {
    this.input.end();
    await this.exited;
    this.stderr.end();
    if (this.problems.length > 0) throw new XattrReadError(this.problems);
    if (this.failure && !(this.failure instanceof XattrReadError)) throw this.failure;
  }

  private batchEnded(): void {
    const files = this.parser.take();
    const next = this.waiting.shift();
    if (this.problems.length > 0) next?.reject(new XattrReadError(this.problems));
    else next?.resolve(files);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (let next = this.waiting.shift(); next; next = this.waiting.shift()) next.reject(this.failure);
  }
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

/** A file's attributes as a block of a `setfattr --restore` dump (names escaped, values base64). */
function dumpBlock(file: string, attrs: ReadonlyMap<string, Buffer>): Buffer {
  let block = `# file: ${escapeName(file)}\n`;
  for (const [name, value] of attrs) block += `${escapeName(name)}=0s${value.toString("base64")}\n`;
  return Buffer.from(`${block}\n`, "latin1");
}

/**
 * Extended attributes set on files (paths as byte strings, values raw bytes) by one long-lived
 * `setfattr --restore`, fed as a stream as files are ready: one process for a whole restore, started
 * at the first file. A file it cannot set makes `close` fail, naming the file.
 */
export class XattrWriter {
  private readonly input = new InputFeed();
  private exited: Promise<unknown> | undefined;

  add(file: string, attrs: ReadonlyMap<string, Buffer>): void {
    if (attrs.size === 0) return;
    this.exited ??= run("setfattr", ["--restore=-"], {
      input: this.input,
      env: { ...process.env, LC_ALL: "C" },
    });
    this.exited.catch(() => {});
    this.input.push(dumpBlock(file, attrs));
  }

  /** Every attribute set (or the failure thrown). Always to be called. */
  async close(): Promise<void> {
    this.input.end();
    await this.exited;
  }
}

/** Set extended attributes on many files with one `setfattr --restore` (see XattrWriter). */
export async function writeXattrs(files: ReadonlyMap<string, ReadonlyMap<string, Buffer>>): Promise<void> {
  const writer = new XattrWriter();
  for (const [file, attrs] of files) writer.add(file, attrs);
  await writer.close();
}
