import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, rename, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { LockError } from "../../src/system/errors.js";
import { acquireLock, withLock } from "../../src/system/lock.js";
import { useScope } from "../support/scope.js";

const WORKER = path.join(import.meta.dirname, "fixtures", "lock-worker.mjs");

function worker(mode: "append" | "hold" | "block", file: string, log: string): ChildProcess {
  return spawn(process.execPath, [WORKER, mode, file, log], { stdio: ["ignore", "pipe", "inherit"] });
}

async function untilLocked(child: ChildProcess): Promise<void> {
  const [chunk] = (await once(child.stdout as NodeJS.ReadableStream, "data")) as [Buffer];
  expect(chunk.toString()).toBe("locked\n");
}

describe("kernel lock (flock on a descriptor we hold)", () => {
  const scope = useScope();

  it("serialises concurrent processes", async () => {
    const dir = await scope.tempDir();
    const file = path.join(dir, "paths.d.lock");
    const log = path.join(dir, "log");
    const children = Array.from({ length: 4 }, () => worker("append", file, log));
    const codes = await Promise.all(children.map(async (child) => (await once(child, "exit"))[0]));
    expect(codes).toEqual([0, 0, 0, 0]);
    const lines = (await readFile(log, "utf8")).trim().split("\n");
    expect(lines).toHaveLength(8);
    for (let i = 0; i < lines.length; i += 2) {
      const pid = lines[i]?.split(" ")[1];
      expect([lines[i], lines[i + 1]]).toEqual([`start ${pid}`, `end ${pid}`]);
    }
  });

  it("is never taken from a live holder whose event loop is blocked (no staleness guess)", async () => {
    const dir = await scope.tempDir();
    const file = path.join(dir, "archive.lock");
    const log = path.join(dir, "log");
    const holder = worker("block", file, log);
    scope.defer("kill holder", async () => {
      holder.kill("SIGKILL");
    });
    await untilLocked(holder);
    // A heartbeat lock (proper-lockfile, stale after 3 s) was taken over here: this one is not.
    const failure = await acquireLock(file, { timeoutMs: 4_000, pidFile: true }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(LockError);
    expect((failure as LockError).message).toContain(`${file} is locked by process ${holder.pid}`);
    // Once the holder lets go, the waiter gets it.
    const waited = Date.now();
    const lock = await acquireLock(file, { timeoutMs: 20_000 });
    const released = Number((await readFile(log, "utf8")).split(" ")[1]);
    expect(Date.now()).toBeGreaterThanOrEqual(released);
    expect(Date.now() - waited).toBeLessThan(10_000);
    lock.release();
  });

  it("is free the moment its holder is killed, with no wait for staleness", async () => {
    const dir = await scope.tempDir();
    const file = path.join(dir, "abandoned.lock");
    const holder = worker("hold", file, path.join(dir, "log"));
    await untilLocked(holder);
    holder.kill("SIGKILL");
    await once(holder, "exit");
    const started = Date.now();
    const result = await withLock(file, async () => "got it", { timeoutMs: 15_000 });
    expect(result).toBe("got it");
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("tells a waiter who holds it, and gives up after its timeout (0 = try once)", async () => {
    const dir = await scope.tempDir();
    const file = path.join(dir, "busy.lock");
    const holder = worker("hold", file, path.join(dir, "log"));
    scope.defer("kill holder", async () => {
      holder.kill("SIGKILL");
    });
    await untilLocked(holder);
    const told: string[] = [];
    const failure = await acquireLock(file, {
      timeoutMs: 300,
      pidFile: true,
      onWait: (h) => told.push(h),
    }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(LockError);
    expect(told).toEqual([`process ${holder.pid}`]);
    const once = await acquireLock(file, { timeoutMs: 0 }).catch((e: unknown) => e);
    expect(once).toBeInstanceOf(LockError);
  });

  it("serialises within one process too, and locks a directory as it is", async () => {
    const dir = await scope.tempDir();
    const first = await acquireLock(dir, { timeoutMs: 0 });
    await expect(acquireLock(dir, { timeoutMs: 0 })).rejects.toBeInstanceOf(LockError);
    first.release();
    (await acquireLock(dir, { timeoutMs: 0 })).release();
  });

  it("check() fails once the locked file was removed or renamed over; a waiter locks the new file", async () => {
    const dir = await scope.tempDir();
    const file = path.join(dir, "backup.tar");
    await writeFile(file, "old");
    const lock = await acquireLock(file);
    lock.check();
    // A waiter opens the old file now and blocks on it.
    const waiter = acquireLock(file, { timeoutMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await writeFile(path.join(dir, "new"), "new");
    await rename(path.join(dir, "new"), file);
    expect(() => lock.check()).toThrow(/was removed or replaced while this process held it/);
    lock.release();
    const second = await waiter;
    second.check();
    expect(await readFile(file, "utf8")).toBe("new");
    await unlink(file);
    expect(() => second.check()).toThrow(LockError);
    second.release();
  });

  it("never writes into a file it locks unless told it is a PID file", async () => {
    const dir = await scope.tempDir();
    const file = path.join(dir, "data");
    await writeFile(file, "precious content");
    (await acquireLock(file)).release();
    expect(await readFile(file, "utf8")).toBe("precious content");
    await expect(acquireLock(path.join(dir, "missing"), { create: false })).rejects.toThrow(/does not exist/);
  });
});
