/** What a command prints: results on stdout, warnings on stderr with the command's name. */
export interface Output {
  print(line: string): void;
  warn(line: string): void;
  /** A problem that does not end the command by itself (it still decides the exit status). */
  error(line: string): void;
}

export function output(program: string): Output {
  return {
    print: (line) => process.stdout.write(`${line}\n`),
    warn: (line) => process.stderr.write(`${program}: warning: ${line}\n`),
    error: (line) => process.stderr.write(`${program}: ${line}\n`),
  };
}
