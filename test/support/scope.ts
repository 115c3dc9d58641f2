import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach } from "vitest";

/** Short unique suffix for names of things a test creates (containers, volumes, repos, files). */
export function uniqueId(prefix = "stowage-test"): string {
  return `${prefix}-${process.pid}-${randomBytes(4).toString("hex")}`;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("no port assigned"));
      });
    });
  });
}

/**
 * What one test made, undone in reverse order after it (even when it fails). Cleanup errors are
 * collected and rethrown so a leak fails the test instead of passing unnoticed.
 */
export class TestScope {
  private readonly undo: Array<{ what: string; action: () => Promise<unknown> }> = [];

  defer(what: string, action: () => Promise<unknown>): void {
    this.undo.push({ what, action });
  }

  async tempDir(prefix = "stowage-test-"): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
    this.defer(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  async cleanup(): Promise<void> {
    const failures: string[] = [];
    for (let step = this.undo.pop(); step; step = this.undo.pop()) {
      try {
        await step.action();
      } catch (error) {
        failures.push(`${step.what}: ${(error as Error).message}`);
      }
    }
    if (failures.length > 0) throw new Error(`test cleanup failed:\n${failures.join("\n")}`);
  }
}

/** A scope cleaned up after every test of the calling file. */
export function useScope(): TestScope {
  const scope = new TestScope();
  afterEach(() => scope.cleanup());
  return scope;
}
