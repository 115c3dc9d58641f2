import { describe, expect, it } from "vitest";
import { LineReader } from "../../src/system/line-reader.js";

describe("LineReader", () => {
  it("hands over whole lines whatever the chunks", () => {
    const lines: string[] = [];
    const reader = new LineReader((line) => lines.push(line));
    for (const chunk of ['{"a":', '1}\n{"b"', ":2}\n", '{"c":3}']) reader.push(Buffer.from(chunk));
    reader.end();
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
  });

  it("utf8: a character split across chunks arrives whole, byte by byte as well", () => {
    const lines: string[] = [];
    const reader = new LineReader((line) => lines.push(line));
    const bytes = Buffer.from("café ☕\n日本\n𝄞", "utf8");
    for (let at = 0; at < bytes.length; at++) reader.push(bytes.subarray(at, at + 1));
    reader.end();
    expect(lines).toEqual(["café ☕", "日本", "𝄞"]);
  });

  it("latin1: a byte that is not UTF-8, split across chunks, stays that byte", () => {
    const lines: string[] = [];
    const reader = new LineReader((line) => lines.push(line), "latin1");
    const bytes = Buffer.from([0x61, 0xff, 0x0a, 0xe9, 0x62]);
    reader.push(bytes.subarray(0, 2));
    reader.push(bytes.subarray(2));
    reader.end();
    expect(lines.map((line) => Buffer.from(line, "latin1"))).toEqual([
      Buffer.from([0x61, 0xff]),
      Buffer.from([0xe9, 0x62]),
    ]);
  });
});
