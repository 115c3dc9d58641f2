import { StringDecoder } from "node:string_decoder";

/**
 * Splits output that streams in chunks into lines, each handed over whole (without its "\n").
 * A UTF-8 character split between two chunks is decoded whole. latin1 keeps every byte of a name
 * that is not UTF-8 as one character (getfattr's output).
 */
export class LineReader {
  private partial = "";
  private readonly decoder: StringDecoder;

  constructor(
    private readonly onLine: (line: string) => void,
    encoding: "utf8" | "latin1" = "utf8",
  ) {
    this.decoder = new StringDecoder(encoding);
  }

  push = (chunk: Buffer): void => {
    const lines = (this.partial + this.decoder.write(chunk)).split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) this.onLine(line);
  };

  /** The last line, if the output did not end with "\n". */
  end(): void {
    this.partial += this.decoder.end();
    if (this.partial) this.onLine(this.partial);
    this.partial = "";
  }
}
