import { describe, expect, it } from "vitest";
import {
  type ArchiveMap,
  ArchiveMapper,
  entriesIn,
  prefixSpans,
  type WatchVolume,
} from "../../src/snapshotter/archive-map.js";
import type { Member } from "../../src/tar/reader.js";

const id = "a".repeat(64);
const other = "b".repeat(64);

/** Members laid out one after another, 1 KiB each, as a scan finds them. */
function mapOf(list: Array<[string, Member["type"]?]>, watch?: WatchVolume): ArchiveMap {
  const mapper = new ArchiveMapper(watch);
  for (const [index, [name, type = "file"]] of list.entries()) {
    mapper.add({
      name,
      type,
      typeflag: "0",
      headerOffset: index * 1024,
      dataOffset: index * 1024 + 512,
      size: 0,
      endOffset: (index + 1) * 1024,
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: { seconds: 0, nanoseconds: 0 },
      linkname: "",
      devmajor: 0,
      devminor: 0,
      xattrs: new Map(),
    });
  }
  return mapper.finish();
}

describe("archive map", () => {
  it("groups copies per prefix, marks older ones superseded, keeps foreign members and interrupted leftovers apart", () => {
    const map = mapOf([
      ["notes.txt"],
      [`p/${id}`, "dir"],
      [`p/${id}/f`],
      ["p/volumes-data.yml"],
      [`q/sub/${id}/`, "dir"],
      ["q/sub/volumes-data.yml"],
      [`p/${id}/`, "dir"],
      ["p/volumes-data.yml"],
      [`p/${id}/partial`],
    ]);
    expect(map.copies.map((c) => [c.prefix, entriesIn(c.spans), c.superseded])).toEqual([
      ["p", 2, true],
      ["q/sub", 1, false],
      ["p", 1, false],
    ]);
    expect(map.foreign.map((s) => s.start)).toEqual([0]);
    expect([...map.incomplete].map(([prefix, spans]) => [prefix, entriesIn(spans)])).toEqual([["p", 1]]);
  });

  it("keeps a volume's members as one span: memory grows with copies, not files", () => {
    const files: Array<[string]> = Array.from({ length: 10_000 }, (_, i) => [`p/${id}/d/f${i}`]);
    const map = mapOf([[`p/${id}`, "dir"], ...files, [`p/${other}`, "dir"], ["p/volumes-data.yml"]]);
    expect(map.spans).toHaveLength(2);
    expect(map.copies[0]?.spans).toEqual([{ start: 0, end: 10_002 * 1024, entries: 10_002 }]);
  });

  it("reads a volumes-data.yml inside a volume as that volume's file, not as an index", () => {
    const map = mapOf([
      [`p/${id}`, "dir"],
      [`p/${id}/volumes-data.yml`],
      [`p/${id}/sub/volumes-data.yml`],
      [`p/${id}/x`],
      ["p/volumes-data.yml"],
    ]);
    expect(map.copies.map((c) => [c.prefix, entriesIn(c.spans)])).toEqual([["p", 4]]);
    expect(map.foreign).toEqual([]);
  });

  it("drops only this prefix's leftovers, not those of a prefix below it", () => {
    const map = mapOf([
      [`p/sub/${other}`, "dir"],
      ["p/sub/volumes-data.yml"],
      [`p/${id}`, "dir"],
      ["p/volumes-data.yml"],
      [`p/sub/${id}/left`],
      [`p/${id}/left`],
    ]);
    expect(entriesIn(prefixSpans(map, "p"))).toBe(3);
    expect(entriesIn(prefixSpans(map, "p/sub"))).toBe(3);
  });

  it("tells each volume of each copy of a watched prefix its members in the same scan, and seals it at its index", () => {
    const watched: string[] = [];
    const watch: WatchVolume = (prefix, volume) => {
      if (prefix !== "p") return undefined;
      const names: string[] = [];
      const label = `${prefix}/${volume.slice(0, 1)}#${watched.length}`;
      watched.push(label);
      return {
        add: (member: Member) => {
          names.push(member.name);
        },
        seal: () => names.push(`sealed ${label}`),
        names,
      } as never;
    };
    const map = mapOf(
      [
        [`p/${id}`, "dir"],
        [`p/${id}/volumes-data.yml`],
        [`q/${id}`, "dir"],
        [`p/${other}`],
        ["p/volumes-data.yml"],
        ["q/volumes-data.yml"],
        [`p/${id}`, "dir"],
        ["p/volumes-data.yml"],
        [`p/${id}/left`],
      ],
      watch,
    );
    const namesOf = (copy: number, volume: string) =>
      (map.copies[copy]?.volumes?.get(volume) as unknown as { names: string[] } | undefined)?.names;
    expect(map.copies.map((copy) => [copy.prefix, [...(copy.volumes?.keys() ?? [])]])).toEqual([
      ["p", [id, other]],
      ["q", []],
      ["p", [id]],
    ]);
    expect(namesOf(0, id)).toEqual([`p/${id}`, `p/${id}/volumes-data.yml`, "sealed p/a#0"]);
    expect(namesOf(0, other)).toEqual([`p/${other}`, "sealed p/b#1"]);
    expect(namesOf(2, id)).toEqual([`p/${id}`, "sealed p/a#2"]);
    // The interrupted copy's watch exists, but belongs to no copy.
    expect(watched).toEqual(["p/a#0", "p/b#1", "p/a#2", "p/a#3"]);
  });

  it("gives up watching a copy with more volumes than snapshotter writes (foreign hex names)", () => {
    const names: Array<[string]> = Array.from({ length: 5000 }, (_, i) => [
      `blobs/${i.toString(16).padStart(64, "0")}`,
    ]);
    let made = 0;
    const map = mapOf([...names, ["blobs/volumes-data.yml"]], () => {
      made++;
      return { add: () => {} };
    });
    expect(made).toBe(4096);
    expect(map.copies[0]?.volumes).toBeUndefined();
  });
});
