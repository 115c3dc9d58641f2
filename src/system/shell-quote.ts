const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quote one word the way bash's `${x@Q}` would accept it back: safe words bare, the rest in single quotes. */
export function shellQuote(word: string): string {
  if (word !== "" && SAFE.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A command line for display (traces, dry runs); never passed to a shell by us. */
export function formatCommand(command: string, args: readonly string[]): string {
  return [command, ...args].map(shellQuote).join(" ");
}
