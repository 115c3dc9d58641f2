import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { formatCommand, shellQuote } from "../../src/system/shell-quote.js";

describe("shellQuote", () => {
  it.each([
    ["plain", "plain"],
    ["/dev/loop0", "/dev/loop0"],
    ["", "''"],
    ["a b", "'a b'"],
    ["it's", "'it'\\''s'"],
    ["$HOME", "'$HOME'"],
    ["new\nline", "'new\nline'"],
  ])("quotes %j as %j", (word, quoted) => {
    expect(shellQuote(word)).toBe(quoted);
  });

  it("round-trips through a real shell", async () => {
    const words = ["a b", "it's", "$(x)", "\\", "*", "new\nline", "", "ü"];
    const result = await run("bash", ["-c", `printf '%s\\0' ${words.map(shellQuote).join(" ")}`]);
    expect(result.stdout.split("\0").slice(0, -1)).toEqual(words);
    expect(formatCommand("echo", ["a b"])).toBe("echo 'a b'");
  });
});
