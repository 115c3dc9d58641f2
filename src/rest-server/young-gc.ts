import { YoungGcPacer } from "../system/young-gc.js";

/**
 * Upload bytes between two young-generation collections (measured best at 2-4 MiB). node:http
 * hands each body chunk over in a new 64 KiB buffer; those buffers die young but take nothing from
 * the JavaScript heap, so V8 collects them only when their external memory passes its limit (about
 * 64 MiB later). A scavenge every 4 MiB frees them at once and malloc hands the same warm memory
 * back to the next chunks: peak RSS during a restic backup fell from about 146 to 88 MiB, and the
 * backup got faster (fewer fresh pages to fault in).
 */
const pacer = new YoungGcPacer(4 * 1024 * 1024);

export function noteBodyBytes(bytes: number): void {
  pacer.note(bytes);
}

/**
 * Listing entries between two young-generation collections. Each entry leaves a name, a stat result
 * and its JSON behind; without the pacing V8 grows its young generation to its cap during a large
 * listing and all of it becomes resident.
 */
const listingPacer = new YoungGcPacer(16_384);

export function noteListedEntries(count: number): void {
  listingPacer.note(count);
}
