import { describe, expect, it } from "vitest";
import { InterruptedError } from "../../src/system/errors.js";
import { interruptible, TimeSlice } from "../../src/system/signals.js";

describe("signals during long work", () => {
  it("a signal aborts the work at its next safe point; the result is 128+N", async () => {
    // The second SIGHUP may land after the work's handlers are gone: without a listener of the
    // test's own it would end the test worker (SIGHUP's default action).
    const guard = () => {};
    process.on("SIGHUP", guard);
    try {
      const seen: string[] = [];
      const work = interruptible(
        async (signal) => {
          const slice = new TimeSlice(signal, 5);
          // Synchronous work in slices: the handler runs between them, as it must under a write.
          for (;;) {
            const until = performance.now() + 2;
            while (performance.now() < until) {}
            if (slice.due()) await slice.pause();
          }
        },
        (signal, first) => seen.push(`${signal}:${first}`),
      );
      setTimeout(() => process.kill(process.pid, "SIGHUP"), 50);
      setTimeout(() => process.kill(process.pid, "SIGHUP"), 60);
      const error = await work.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InterruptedError);
      expect((error as InterruptedError).exitCode).toBe(129);
      expect(seen[0]).toBe("SIGHUP:true");
      // The handlers are gone afterwards: nothing of ours keeps listening.
      expect(process.listeners("SIGHUP")).toEqual([guard]);
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      process.off("SIGHUP", guard);
    }
  });

  it("finishes normally when no signal comes", async () => {
    expect(await interruptible(async () => 42)).toBe(42);
  });
});
