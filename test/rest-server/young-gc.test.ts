import { constants, PerformanceObserver } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { noteBodyBytes, noteListedEntries } from "../../src/rest-server/young-gc.js";

/** Young-generation collections seen while `action` runs and shortly after. */
async function minorCollectionsDuring(action: () => void): Promise<number> {
  let count = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) count++;
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  action();
  await new Promise((resolve) => setTimeout(resolve, 200));
  observer.disconnect();
  return count;
}

describe("noteBodyBytes", () => {
  it("runs a young-generation collection once 4 MiB of body have passed, not before", async () => {
    // Settle the counter: whatever earlier tests noted, this starts a fresh 4 MiB window.
    await minorCollectionsDuring(() => noteBodyBytes(4 * 1024 * 1024));
    expect(await minorCollectionsDuring(() => noteBodyBytes(64 * 1024))).toBe(0);
    const seen = await minorCollectionsDuring(() => {
      for (let i = 0; i < 64; i++) noteBodyBytes(64 * 1024);
    });
    expect(seen).toBeGreaterThanOrEqual(1);
  });
});

describe("noteListedEntries", () => {
  it("runs a young-generation collection every 16,384 listed entries, not before", async () => {
    await minorCollectionsDuring(() => noteListedEntries(16_384));
    expect(await minorCollectionsDuring(() => noteListedEntries(512))).toBe(0);
    expect(await minorCollectionsDuring(() => noteListedEntries(16_384))).toBeGreaterThanOrEqual(1);
  });
});
