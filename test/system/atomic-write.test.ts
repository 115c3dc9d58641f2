import { chown, readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { writeFileAtomic } from "../../src/system/atomic-write.js";
import { useScope } from "../support/scope.js";

describe("writeFileAtomic", () => {
  const scope = useScope();

  it("creates a file with exactly the requested mode, whatever the umask", async () => {
    const file = path.join(await scope.tempDir(), "new.conf");
    await writeFileAtomic(file, "content\n", { mode: 0o640 });
    expect(await readFile(file, "utf8")).toBe("content\n");
    expect((await stat(file)).mode & 0o7777).toBe(0o640);
  });

  it("replaces an existing file, keeping its owner and mode when asked", async () => {
    const dir = await scope.tempDir();
    const file = path.join(dir, "owned");
    await writeFile(file, "old", { mode: 0o604 });
    await chown(file, 1234, 4321);
    await writeFileAtomic(file, "new", { keepOwnership: true });
    const info = await stat(file);
    expect(await readFile(file, "utf8")).toBe("new");
    expect([info.uid, info.gid, info.mode & 0o7777]).toEqual([1234, 4321, 0o604]);
    expect(await readdir(dir)).toEqual(["owned"]);
  });

  it("uses a fixed temp name when given, overwriting one a crash left behind", async () => {
    const dir = await scope.tempDir();
    const file = path.join(dir, "config.json");
    await writeFile(`${file}.new`, "stale leftover");
    await writeFileAtomic(file, "{}\n", { temp: `${file}.new`, mode: 0o644 });
    expect(await readFile(file, "utf8")).toBe("{}\n");
    expect(await readdir(dir)).toEqual(["config.json"]);
  });

  it("streams chunks from an async iterable", async () => {
    const file = path.join(await scope.tempDir(), "streamed");
    async function* chunks() {
      for (let i = 0; i < 1000; i++) yield Buffer.from(`${i}\n`);
    }
    await writeFileAtomic(file, chunks());
    expect((await readFile(file, "utf8")).split("\n")).toHaveLength(1001);
  });

  it("leaves the old file intact and no temp file when writing fails before the rename", async () => {
    const dir = await scope.tempDir();
    const file = path.join(dir, "precious");
    await writeFile(file, "original content");
    async function* failing() {
      yield "partial new content";
      throw new Error("disk went away");
    }
    await expect(writeFileAtomic(file, failing())).rejects.toThrow("disk went away");
    expect(await readFile(file, "utf8")).toBe("original content");
    expect(await readdir(dir)).toEqual(["precious"]);
  });

  it("fails clearly when the directory does not exist", async () => {
    const file = path.join(await scope.tempDir(), "missing", "file");
    await expect(writeFileAtomic(file, "x")).rejects.toMatchObject({ code: "ENOENT" });
  });
});
