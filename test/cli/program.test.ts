import { describe, expect, it } from "vitest";
import { parseSeconds } from "../../src/cli/program.js";
import { ConfigError } from "../../src/system/errors.js";

describe("parseSeconds", () => {
  it.each([
    ["30", 30],
    ["0", 0],
    ["1.5", 1.5],
  ])("reads %j as %d", (value, seconds) => expect(parseSeconds(value, "--grace")).toBe(seconds));

  it.each(["", " ", "-1", "ten", "Infinity"])("rejects %j naming the flag", (value) => {
    expect(() => parseSeconds(value, "--grace")).toThrow(ConfigError);
    expect(() => parseSeconds(value, "--grace")).toThrow(`--grace ${value}: expected a number of seconds`);
  });
});
