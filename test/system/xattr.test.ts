import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import {
  GetfattrParser,
  parseGetfattr,
  writeXattrs,
  XattrReadError,
  XattrReader,
} from "../../src/system/xattr.js";

/** One batch through a reader of its own. */
async function readXattrsOf(files: readonly string[]) {
  const reader = new XattrReader();
  try {
    return await reader.read(files);
  } finally {
    await reader.close();
  }
}

describe("getfattr output", () => {
  it("decodes file names with octal escapes and base64/hex/text values", () => {
    const output = [
      "# file: /tmp/a\\012b",
      "user.one=0saGk=",
      "user.two=0x6869",
      'user.three="hi"',
      "user.empty",
      "",
      "# file: /tmp/back\\\\slash",
      "trusted.overlay.opaque=0seQ==",
      "",
    ].join("\n");
    const files = parseGetfattr(output);
    expect([...files.keys()]).toEqual(["/tmp/a\nb", "/tmp/back\\slash"]);
    const first = files.get("/tmp/a\nb");
    expect(first?.get("user.one")?.toString()).toBe("hi");
    expect(first?.get("user.two")?.toString()).toBe("hi");
    expect(first?.get("user.three")?.toString()).toBe("hi");
    expect(first?.get("user.empty")?.length).toBe(0);
    expect(files.get("/tmp/back\\slash")?.get("trusted.overlay.opaque")?.toString()).toBe("y");
  });
});

describe("extended attributes through the real getfattr and setfattr", () => {
  it("reads a batch of byte-string paths through xargs; a file that is gone is skipped, not a failure", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "stowage-xattr-"));
    try {
      const latin1 = Buffer.from(`${dir}/caf\xe9`, "latin1");
      await writeFile(latin1, "x");
      await run("python3", [
        "-c",
        "import os,sys; os.setxattr(os.fsencode(sys.argv[1]) + b'/caf\\xe9', b'user.k', b'\\x00\\xff')",
        dir,
      ]);
      const files = [latin1.toString("latin1"), `${dir}/vanished`];
      const found = await readXattrsOf(files);
      expect([...found.keys()]).toEqual([latin1.toString("latin1")]);
      expect(found.get(latin1.toString("latin1"))?.get("user.k")).toEqual(Buffer.from([0, 0xff]));
      // Written back by setfattr under another name, read by the real getfattr.
      const other = Buffer.from(`${dir}/n\xe9w`, "latin1");
      await writeFile(other, "y");
      await writeXattrs(
        new Map([[other.toString("latin1"), new Map([["user.n\xe9", Buffer.from("v=1\n")]])]]),
      );
      const back = await readXattrsOf([other.toString("latin1")]);
      expect(back.get(other.toString("latin1"))?.get("user.n\xe9")?.toString()).toBe("v=1\n");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("answers pipelined batches in order from one helper, empty ones too, and names a real failure", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "stowage-xattr-"));
    try {
      const names = ["a", "b", "c"].map((name) => path.join(dir, name));
      for (const name of names) await writeFile(name, name);
      await run("setfattr", ["-n", "user.which", "-v", "a", names[0] as string]);
      await run("setfattr", ["-n", "user.which", "-v", "c", names[2] as string]);
      const reader = new XattrReader();
      const batches = [
        reader.read([names[0] as string]),
        reader.read([names[1] as string]),
        reader.read([]),
        reader.read(names),
      ];
      const [first, second, empty, all] = await Promise.all(batches);
      await reader.close();
      expect([...(first ?? []).keys()]).toEqual([names[0]]);
      expect(second?.size).toBe(0);
      expect(empty?.size).toBe(0);
      expect([...(all ?? []).keys()]).toEqual([names[0], names[2]]);
      expect(
        all
          ?.get(names[2] as string)
          ?.get("user.which")
          ?.toString(),
      ).toBe("c");

      // A name below a regular file is not "gone": getfattr's ENOTDIR fails the reader, at the
      // latest when it is closed (its stderr may come after the batch's answer).
      const failing = new XattrReader();
      const read = await failing.read([path.join(names[0] as string, "below")]).catch((error) => error);
      if (read instanceof Error) expect(read).toBeInstanceOf(XattrReadError);
      await expect(failing.close()).rejects.toThrow(/cannot read extended attributes: .*Not a directory/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("parses a dump that arrives in pieces, split anywhere", () => {
    const text = "# file: /a\nuser.x=0saGk=\n\n# file: /b\\040c\nuser.y=0x6869\n\n";
    for (let cut = 0; cut < text.length; cut++) {
      const parser = new GetfattrParser();
      parser.push(Buffer.from(text.slice(0, cut), "latin1"));
      parser.push(Buffer.from(text.slice(cut), "latin1"));
      const files = parser.end();
      expect([...files.keys()]).toEqual(["/a", "/b c"]);
      expect(files.get("/b c")?.get("user.y")?.toString()).toBe("hi");
    }
  });
});
