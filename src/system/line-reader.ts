/**
 * Splits output that streams in chunks into lines, each handed over whole (without its "\n").
 * latin1 keeps every byte of a name that is not UTF-8 as one character (getfattr's output).
 */
export class LineReader {
  private partial = "";

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly encoding: "utf8" | "latin1" = "utf8",
  ) {}

  push = (chunk: Buffer): void => {
    const lines = (this.partial + chunk.toString(this.encoding)).split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) this.onLine(line);
  };

  /** The last line, if the output did not end with "\n". */
  end(): void {
    if (this.partial) this.onLine(this.partial);
    this.partial = "";
  }
}
