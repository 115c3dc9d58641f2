import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ArchiveWriter, writeArchive } from "../../src/tar/archive-writer.js";
import { END_OF_ARCHIVE } from "../../src/tar/header.js";
import { useScope } from "../support/scope.js";

const MiB = 1024 * 1024;

/** 1 MiB pieces that differ from each other, so a piece written at the wrong place shows. */
function piece(index: number): Buffer {
  const bytes = Buffer.alloc(MiB, index % 251);
  bytes.writeUInt32BE(index, 0);
  return bytes;
}

const sha = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

describe("ArchiveWriter: buffers written behind the caller", () => {
  const scope = useScope();

  it.each([
    ["never yielding (every later buffer written in place)", false],
    ["yielding between pieces (buffers written by the thread pool)", true],
  ])("puts every byte where it belongs, %s", async (_what, yielding) => {
    const dir = await scope.tempDir("stowage-writer-");
    const file = path.join(dir, "out.tar");
    const fd = openSync(file, "w");
    const expected: Buffer[] = [Buffer.alloc(512, 7)];
    let reported = 0;
    try {
      const end = await writeArchive(fd, 512, { onBytes: (n) => (reported += n) }, async (writer) => {
        for (let i = 0; i < 21; i++) {
          writer.write(piece(i));
          expected.push(piece(i));
          if (yielding) await new Promise((resolve) => setImmediate(resolve));
        }
      });
      expect(end).toBe(512 + 21 * MiB + END_OF_ARCHIVE.length);
    } finally {
      closeSync(fd);
    }
    expected.push(END_OF_ARCHIVE);
    const written = readFileSync(file);
    expect(reported).toBe(written.length - 512);
    expect(sha(written.subarray(512))).toBe(sha(Buffer.concat(expected).subarray(512)));
  });

  it("reports a failed write from the thread pool as the system error it is, once finished", async () => {
    const dir = await scope.tempDir("stowage-writer-");
    // A descriptor open for reading only: every write fails with EBADF.
    const file = path.join(dir, "read-only");
    closeSync(openSync(file, "w"));
    const fd = openSync(file, "r");
    try {
      const writer = new ArchiveWriter(fd, 0);
      const work = async () => {
        for (let i = 0; i < 9; i++) {
          writer.write(piece(i));
          await new Promise((resolve) => setImmediate(resolve));
        }
        return writer.finish();
      };
      await expect(work()).rejects.toMatchObject({ code: "EBADF", syscall: "write" });
      await writer.close();
    } finally {
      closeSync(fd);
    }
  });
});
