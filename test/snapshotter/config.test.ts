import { describe, expect, it } from "vitest";
import { checkConfig, prefixProblem } from "../../src/snapshotter/config.js";
import { parseIndex, renderIndex, volumeId } from "../../src/snapshotter/volume-index.js";

describe("snapshotter config", () => {
  it.each([
    ["volumes/busy_lewin", undefined],
    ["a", undefined],
    ["/abs", "must be relative"],
    ["a/../b", "'.' or '..'"],
    ["./a", "'.' or '..'"],
    ["a//b", "empty segments"],
    ["a/", "empty segments"],
    ["", "is empty"],
    [`a/${"0".repeat(64)}`, "64 hex digits"],
    [`a/${"0".repeat(63)}`, undefined],
  ])("prefix %j", (prefix, problem) => {
    if (problem === undefined) expect(prefixProblem(prefix)).toBeUndefined();
    else expect(prefixProblem(prefix)).toContain(problem);
  });

  it("needs absolute, distinct volumes and names the field", () => {
    expect(checkConfig({ prefix: "p", volumes: ["/a", "/b"] }, "c.yml")).toEqual({
      prefix: "p",
      volumes: ["/a", "/b"],
    });
    expect(checkConfig({ prefix: "p" }, "c.yml")).toEqual({ prefix: "p", volumes: undefined });
    expect(() => checkConfig({ prefix: "p", volumes: ["a"] }, "c.yml")).toThrow(
      'c.yml: volumes[0] "a" must be an absolute path',
    );
    expect(() => checkConfig({ prefix: "p", volumes: ["/a", "/a/"] }, "c.yml")).toThrow("lists /a twice");
    expect(() => checkConfig({ volumes: ["/a"] }, "c.yml")).toThrow("c.yml: prefix: missing");
  });
});

describe("volumes-data.yml", () => {
  it("round-trips the original's format and checks ids against targets", () => {
    const records = [
      { id: volumeId("/home/volume1"), type: "dir" as const, target: "/home/volume1" },
      { id: volumeId("/home/volume2.txt"), type: "file" as const, target: "/home/volume2.txt" },
    ];
    const text = renderIndex(records);
    expect(text).toBe(
      `- id: ${records[0]?.id}\n  type: dir\n  target: /home/volume1\n- id: ${records[1]?.id}\n  type: file\n  target: /home/volume2.txt\n`,
    );
    expect(parseIndex(text, "x")).toEqual(records);
    expect(() => parseIndex(text.replace("/home/volume1", "/etc"), "x")).toThrow(
      "not the SHA-256 of its path",
    );
    expect(() => parseIndex("- id: 1\n  type: pipe\n  target: /x\n", "x")).toThrow("needs id, type");
  });
});
