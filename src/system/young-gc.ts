import v8 from "node:v8";
import vm from "node:vm";

type GcFunction = (options: { type: "minor" | "major"; execution: "async" | "sync" }) => unknown;

let gc: GcFunction | null | undefined;

/** V8's gc(), or null where it cannot be had (then the work simply runs without the pacing). */
function gcFunction(): GcFunction | null {
  if (gc === undefined) {
    let found = (globalThis as { gc?: unknown }).gc;
    if (typeof found !== "function") {
      // Reaches gc() in a process not started with --expose-gc: the flag applies to new contexts.
      v8.setFlagsFromString("--expose-gc");
      found = vm.runInNewContext("typeof gc === 'function' ? gc : undefined");
    }
    gc = typeof found === "function" ? (found as GcFunction) : null;
  }
  return gc;
}

/**
 * Runs a cheap young-generation collection (a scavenge) every `budget` units of work. Work that
 * makes short-lived garbage at a high rate (body chunks, per-file stat objects) otherwise lets V8
 * grow its young generation to 128 MiB before collecting, and all of that becomes resident; a
 * scavenge every few MiB of garbage frees it at once, and malloc and V8 reuse the warm memory.
 */
export class YoungGcPacer {
  private since = 0;

  constructor(private readonly budget: number) {}

  note(units: number): void {
    this.since += units;
    if (this.since < this.budget) return;
    this.since = 0;
    gcFunction()?.({ type: "minor", execution: "async" });
  }
}

/**
 * A full collection now, between two phases of work: what the first one left (a million-entry
 * table, say) is given back before the second one starts threads of its own.
 */
export function collectGarbage(): void {
  gcFunction()?.({ type: "major", execution: "sync" });
}
