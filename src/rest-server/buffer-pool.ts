/** The size of the buffers a download reads into and writes from. */
export const CHUNK_BYTES = 512 * 1024;
/** Chunk buffers kept for the next download: allocating and collecting them per request costs more CPU than the copies. */
const SPARE_LIMIT = 32;
const spares: Buffer[] = [];

/**
 * A buffer of `size` bytes, a kept one when it is a full chunk. Its holder gives it back only once
 * nothing (no pending socket write) can still read it.
 */
export function takeBuffer(size: number = CHUNK_BYTES): Buffer {
  return size === CHUNK_BYTES ? (spares.pop() ?? Buffer.allocUnsafe(size)) : Buffer.allocUnsafe(size);
}

export function giveBack(buffer: Buffer): void {
  if (buffer.length === CHUNK_BYTES && spares.length < SPARE_LIMIT) spares.push(buffer);
}
