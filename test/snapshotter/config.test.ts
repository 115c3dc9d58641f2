import { describe, expect, it } from "vitest";
import { mapArchive } from "../../src/snapshotter/archive-map.js";
import { checkConfig, prefixProblem } from "../../src/snapshotter/config.js";
import { parseIndex, renderIndex, volumeId } from "../../src/snapshotter/volume-index.js";
import type { Member } from "../../src/tar/reader.js";

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

describe("archive map", () => {
  const member = (name: string, type: Member["type"] = "file"): Member => ({
    name,
    type,
    typeflag: "0",
    headerOffset: 0,
    dataOffset: 0,
    size: 0,
    endOffset: 0,
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: { seconds: 0, nanoseconds: 0 },
    linkname: "",
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(),
  });
  const id = "a".repeat(64);

  it("groups copies per prefix, marks older ones superseded, keeps foreign members and interrupted leftovers apart", () => {
    const members = [
      member("notes.txt"),
      member(`p/${id}`, "dir"),
      member(`p/${id}/f`),
      member("p/volumes-data.yml"),
      member(`q/sub/${id}/`, "dir"),
      member("q/sub/volumes-data.yml"),
      member(`p/${id}/`, "dir"),
      member("p/volumes-data.yml"),
      member(`p/${id}/partial`),
    ];
    const map = mapArchive(members);
    expect(map.copies.map((c) => [c.prefix, c.members.length, c.superseded])).toEqual([
      ["p", 2, true],
      ["q/sub", 1, false],
      ["p", 1, false],
    ]);
    expect(map.foreign.map((m) => m.name)).toEqual(["notes.txt"]);
    expect(map.incomplete.map((m) => m.name)).toEqual([`p/${id}/partial`]);
  });
});
