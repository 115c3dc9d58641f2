import { describe, expect, it } from "vitest";
import {
  findMount,
  parseMountinfo,
  parseMountinfoLine,
  readMountinfo,
  unescapeMountField,
} from "../../src/system/mountinfo.js";

const SAMPLE = [
  "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro",
  "36 22 0:33 /@foo /srv/containers/foo rw,noatime shared:20 master:3 - btrfs /dev/loop0 rw,space_cache=v2,subvolid=257,subvol=/@foo",
  "37 22 0:34 / /mnt/my\\040disk\\011tab ro,nosuid - vfat /dev/sdb\\0401 rw",
  "38 22 0:35 /back\\134slash /mnt/new\\012line rw - tmpfs tmpfs rw",
  "39 22 0:36 / /srv rw - tmpfs first rw",
  "40 22 0:37 / /srv rw - tmpfs second rw",
].join("\n");

describe("mountinfo", () => {
  it("decodes the kernel's octal escapes for space, tab, newline and backslash", () => {
    expect(unescapeMountField("a\\040b\\011c\\012d\\134e")).toBe("a b\tc\nd\\e");
    expect(unescapeMountField("plain/ünïcode")).toBe("plain/ünïcode");
  });

  it("parses every field, with optional fields of any count", () => {
    const entry = parseMountinfoLine(SAMPLE.split("\n")[1] ?? "");
    expect(entry).toEqual({
      mountId: 36,
      parentId: 22,
      majorMinor: "0:33",
      root: "/@foo",
      mountPoint: "/srv/containers/foo",
      mountOptions: ["rw", "noatime"],
      optionalFields: ["shared:20", "master:3"],
      fsType: "btrfs",
      source: "/dev/loop0",
      superOptions: ["rw", "space_cache=v2", "subvolid=257", "subvol=/@foo"],
    });
  });

  it("finds mount points with spaces, tabs and newlines in them", () => {
    const entries = parseMountinfo(SAMPLE);
    expect(findMount(entries, "/mnt/my disk\ttab")?.source).toBe("/dev/sdb 1");
    expect(findMount(entries, "/mnt/new\nline")?.root).toBe("/back\\slash");
    expect(findMount(entries, "/mnt/my")).toBeUndefined();
  });

  it("returns the topmost of stacked mounts", () => {
    const entries = parseMountinfo(SAMPLE);
    expect(findMount(entries, "/srv/")?.source).toBe("second");
  });

  it("rejects malformed lines with the line in the message", () => {
    expect(() => parseMountinfoLine("1 2 3")).toThrow(/malformed mountinfo line: "1 2 3"/);
    expect(() => parseMountinfoLine("1 2 0:1 / /x rw shared:1 ext4 /dev/x rw")).toThrow(/malformed/);
  });

  it("reads this process's real mount table", async () => {
    const entries = await readMountinfo();
    expect(findMount(entries, "/")).toBeDefined();
    expect(findMount(entries, "/proc")?.fsType).toBe("proc");
  });
});
