import { describe, expect, it } from "vitest";
import { PathHasher, PathSet } from "../../src/snapshotter/path-set.js";
import { memberPath, VolumeCheck } from "../../src/snapshotter/volume-check.js";
import type { Member, MemberType } from "../../src/tar/reader.js";

const root = `p/${"a".repeat(64)}`;
let offset = 0;

function member(name: string, type: MemberType = "file", linkname = ""): Member {
  offset += 1024;
  return {
    name,
    type,
    typeflag: type === "other" ? "V" : "0",
    headerOffset: offset,
    dataOffset: offset + 512,
    size: type === "file" ? 10 : 0,
    endOffset: offset + 1024,
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: { seconds: 0, nanoseconds: 0 },
    linkname,
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(),
  };
}

function hashOf(path: string): [number, number] {
  const hasher = new PathHasher();
  for (let i = 0; i < path.length; i++) hasher.push(path.charCodeAt(i));
  return [hasher.high, hasher.low];
}

describe("PathSet", () => {
  it("adds, finds and deletes like a Set, across growth and probe runs", () => {
    const set = new PathSet();
    const reference = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      set.add(...hashOf(`d${i % 97}/f${i}`));
      reference.add(`d${i % 97}/f${i}`);
    }
    for (let i = 0; i < 20_000; i += 3) {
      set.delete(...hashOf(`d${i % 97}/f${i}`));
      reference.delete(`d${i % 97}/f${i}`);
    }
    expect(set.size).toBe(reference.size);
    for (let i = 0; i < 20_000; i++)
      expect(set.has(...hashOf(`d${i % 97}/f${i}`))).toBe(reference.has(`d${i % 97}/f${i}`));
    expect(set.has(...hashOf("never/added"))).toBe(false);
  });

  it("hashes every ancestor on the way to a path", () => {
    const hasher = new PathHasher();
    const seen: Array<[number, number]> = [];
    for (const char of "a/b/c") {
      if (char === "/") seen.push([hasher.high, hasher.low]);
      hasher.push(char.charCodeAt(0));
    }
    expect(seen).toEqual([hashOf("a"), hashOf("a/b")]);
  });
});

describe("VolumeCheck", () => {
  const noConfirm = async () => {
    throw new Error("not expected to confirm");
  };

  it("names the member that escapes, is stored below a file, or links to nothing before it", async () => {
    expect(() => memberPath({ name: `${root}/a/../b` }, root)).toThrow(/would escape its volume/);
    expect(() => memberPath({ name: `${root}/a//b` }, root)).toThrow(/would escape its volume/);
    expect(() => memberPath({ name: `${root}/./b` }, root)).toThrow(/would escape its volume/);
    expect(() => memberPath({ name: "q/other" }, root)).toThrow(/is not inside/);
    expect(memberPath({ name: `./${root}/a/...b/` }, root)).toBe("a/...b");

    const exact = (types: Record<string, MemberType>) => async (paths: readonly string[]) =>
      new Map(paths.flatMap((p) => (types[p] ? [[p, types[p] as MemberType] as const] : [])));
    const check = new VolumeCheck(root, exact({ link: "symlink" }));
    check.add(member(root, "dir"));
    check.add(member(`${root}/link`, "symlink"));
    await expect(check.add(member(`${root}/link/escaped`))).rejects.toThrow(
      /which the archive makes a symlink/,
    );
    expect(() => check.add(member(`${root}/h`, "hardlink", `${root}/nothing`))).toThrow(
      /comes nowhere before it/,
    );
    expect(() => check.add(member(`${root}/h`, "hardlink", "etc/passwd"))).toThrow(/outside its volume/);
    expect(() => check.add(member(`${root}/dev`, "other"))).toThrow(/unsupported entry type 'V'/);
  });

  it("lets a directory replace a file, links to earlier files, and counts entries and bytes", () => {
    const check = new VolumeCheck(root, noConfirm);
    check.add(member(root, "dir"));
    check.add(member(`${root}/x`));
    check.add(member(`${root}/x`, "dir"));
    check.add(member(`${root}/x/y`));
    check.add(member(`${root}/h`, "hardlink", `./${root}/x/y`));
    expect([check.entries, check.bytes]).toEqual([5, 20]);
  });

  it("a hash that wrongly says an ancestor is a file is confirmed, not believed", async () => {
    const asked: string[][] = [];
    // The exact look finds `x` last a directory: as after a chance collision of hashes.
    const check = new VolumeCheck(root, async (paths) => {
      asked.push([...paths]);
      return new Map(paths.map((p) => [p, "dir" as MemberType]));
    });
    check.add(member(`${root}/x`));
    await check.add(member(`${root}/x/y`));
    expect(asked).toEqual([["x"]]);
    expect(check.entries).toBe(2);
  });
});
