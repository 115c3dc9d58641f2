import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { LockError } from "../../src/system/errors.js";
import { acquireLock, withLock } from "../../src/system/lock.js";
import { useScope } from "../support/scope.js";

const WORKER = path.join(import.meta.dirname, "fixtures", "lock-worker.mjs");

function worker(mode: "append" | "hold", target: string, log: string): ChildProcess {
  return spawn(process.execPath, [WORKER, mode, target, log], { stdio: ["ignore", "pipe", "inherit"] });
}

async function untilLocked(child: ChildProcess): Promise<void> {
  const [chunk] = (await once(child.stdout as NodeJS.ReadableStream, "data")) as [Buffer];
  expect(chunk.toString()).toBe("locked\n");
}

describe("advisory lock", () => {
  const scope = useScope();

  it("serialises concurrent processes", async () => {
    const dir = await scope.tempDir();
    const target = path.join(dir, "paths.d");
    const log = path.join(dir, "log");
    const children = Array.from({ length: 4 }, () => worker("append", target, log));
    const codes = await Promise.all(children.map(async (child) => (await once(child, "exit"))[0]));
    expect(codes).toEqual([0, 0, 0, 0]);
    const lines = (await readFile(log, "utf8")).trim().split("\n");
    expect(lines).toHaveLength(8);
    for (let i = 0; i < lines.length; i += 2) {
      const pid = lines[i]?.split(" ")[1];
      expect([lines[i], lines[i + 1]]).toEqual([`start ${pid}`, `end ${pid}`]);
    }
  });

  it("times out with a LockError while a live process holds it", async () => {
    const dir = await scope.tempDir();
    const target = path.join(dir, "busy");
    const holder = worker("hold", target, path.join(dir, "log"));
    scope.defer("kill holder", async () => {
      holder.kill("SIGKILL");
    });
    await untilLocked(holder);
    const failure = await acquireLock(target, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(LockError);
    expect((failure as LockError).message).toContain(`${target} is locked by another process`);
  });

  it("takes over a lock left by a killed process", async () => {
    const dir = await scope.tempDir();
    const target = path.join(dir, "abandoned");
    const holder = worker("hold", target, path.join(dir, "log"));
    await untilLocked(holder);
    holder.kill("SIGKILL");
    await once(holder, "exit");
    const result = await withLock(target, async () => "got it", { timeoutMs: 15_000, staleMs: 2_000 });
    expect(result).toBe("got it");
  });
});
