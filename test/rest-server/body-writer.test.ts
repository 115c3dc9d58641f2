import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writeBody } from "../../src/rest-server/body-writer.js";
import { HttpError } from "../../src/rest-server/http-error.js";

const KiB = 1024;

/** A body that yields its chunks asynchronously, one per tick, like a socket. */
function bodyOf(chunks: Buffer[]): Readable {
  return Readable.from(
    (async function* () {
      for (const chunk of chunks) {
        await new Promise((resolve) => setImmediate(resolve));
        yield chunk;
      }
    })(),
    { objectMode: false },
  );
}

describe("writeBody", () => {
  let dir: string;
  let file: string;
  let fd: number;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "stowage-body-"));
    file = path.join(dir, "upload");
    fd = openSync(file, "wx");
  });
  afterEach(async () => {
    try {
      closeSync(fd);
    } catch {}
    await rm(dir, { recursive: true, force: true });
  });

  it("writes every byte in order and returns the SHA-256, across many read-ahead batches", async () => {
    // 6 MiB in 64 KiB chunks, all waiting at once: more than the read-ahead, so the body is paused
    // while a write is in flight and resumed by the next batch.
    const chunks = Array.from({ length: 96 }, () => randomBytes(64 * KiB));
    const whole = Buffer.concat(chunks);
    const body = new PassThrough({ highWaterMark: whole.length });
    for (const chunk of chunks) body.write(chunk);
    body.end();
    let pauses = 0;
    const pause = body.pause.bind(body);
    body.pause = () => {
      pauses++;
      return pause();
    };
    const digest = await writeBody(fd, body, whole.length, true);
    expect(pauses).toBeGreaterThan(0);
    expect(digest).toBe(createHash("sha256").update(whole).digest("hex"));
    expect((await readFile(file)).equals(whole)).toBe(true);
  });

  it("hashes nothing when no digest is wanted, and accepts an empty body", async () => {
    expect(await writeBody(fd, bodyOf([Buffer.from("abc")]), 3, false)).toBeUndefined();
    expect(await readFile(file, "utf8")).toBe("abc");
    const other = openSync(path.join(dir, "empty"), "wx");
    try {
      expect(await writeBody(other, bodyOf([]), 0, true)).toBe(createHash("sha256").digest("hex"));
    } finally {
      closeSync(other);
    }
  });

  it("rejects a body shorter than announced with 400", async () => {
    const error = await writeBody(fd, bodyOf([Buffer.alloc(10)]), 11, true).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).status).toBe(400);
    expect((error as HttpError).message).toMatch(/shorter than Content-Length \(10 of 11 bytes\)/);
  });

  it("rejects a body longer than announced with 400 and writes nothing past the limit", async () => {
    const body = bodyOf([Buffer.alloc(8, 1), Buffer.alloc(8, 2)]);
    const error = await writeBody(fd, body, 12, true).catch((e: unknown) => e);
    expect((error as HttpError).status).toBe(400);
    expect((error as HttpError).message).toMatch(/longer than Content-Length/);
    expect(fstatSync(fd).size).toBe(8);
  });

  it("rejects when the body fails mid-way, but only after the write in flight has finished", async () => {
    // A FIFO nobody reads holds a write of more than its 64 KiB buffer until we drain it.
    const fifo = path.join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const pipe = openSync(fifo, "r+");
    try {
      const body = new PassThrough();
      let settled = false;
      const done = writeBody(pipe, body, 1024 * KiB, true).finally(() => {
        settled = true;
      });
      done.catch(() => {});
      body.write(Buffer.alloc(256 * KiB, 7));
      await new Promise((resolve) => setTimeout(resolve, 50));
      body.destroy(new Error("connection reset"));
      await new Promise((resolve) => setTimeout(resolve, 100));
      // The caller closes the descriptor once this settles; it must not while writev still runs.
      expect(settled).toBe(false);
      const sink = Buffer.alloc(64 * KiB);
      for (let drained = 0; drained < 256 * KiB; ) drained += readSync(pipe, sink);
      await expect(done).rejects.toThrow("connection reset");
    } finally {
      closeSync(pipe);
    }
  });

  it("rejects a body whose connection closed before it was read", async () => {
    const body = new PassThrough();
    body.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    await expect(writeBody(fd, body, 5, true)).rejects.toMatchObject({ code: "ECONNRESET" });
  });

  it("passes a write error on (EBADF on a read-only descriptor)", async () => {
    const readOnly = path.join(dir, "read-only");
    await writeFile(readOnly, "");
    const ro = openSync(readOnly, "r");
    try {
      await expect(writeBody(ro, bodyOf([Buffer.alloc(4)]), 4, true)).rejects.toMatchObject({
        code: "EBADF",
      });
    } finally {
      closeSync(ro);
    }
  });
});
