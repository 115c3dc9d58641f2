/**
 * A set of byte-string paths kept as 63-bit hashes in two typed arrays: 8 bytes a slot instead of a
 * string and a map entry, so that a million paths take 16 MiB. A hash says "maybe" for a path it
 * never saw with a chance of about n / 2^63; callers that must be exact confirm a hit otherwise.
 *
 * The hash is computed a character at a time, so the hash of every ancestor of a path ("a" and
 * "a/b" of "a/b/c") comes out on the way to the path's own (`PathHasher`).
 */
export class PathSet {
  private high = new Uint32Array(1024);
  private low = new Uint32Array(1024);
  private mask = 1023;
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(high: number, low: number): boolean {
    return this.find(high, low) >= 0;
  }

  add(high: number, low: number): void {
    if (this.find(high, low) >= 0) return;
    if ((this.count + 1) * 4 > (this.mask + 1) * 3) this.grow();
    this.place(high, low);
    this.count++;
  }

  delete(high: number, low: number): void {
    let slot = this.find(high, low);
    if (slot < 0) return;
    this.count--;
    // Backward shift: later members of the probe run move up, so no lookup stops at the gap.
    for (let next = (slot + 1) & this.mask; this.low[next] !== 0; next = (next + 1) & this.mask) {
      const home = (this.high[next] as number) & this.mask;
      if (((next - home) & this.mask) >= ((next - slot) & this.mask)) {
        this.high[slot] = this.high[next] as number;
        this.low[slot] = this.low[next] as number;
        slot = next;
      }
    }
    this.low[slot] = 0;
  }

  private find(high: number, low: number): number {
    for (let slot = high & this.mask; this.low[slot] !== 0; slot = (slot + 1) & this.mask)
      if (this.low[slot] === low && this.high[slot] === high) return slot;
    return -1;
  }

  private place(high: number, low: number): void {
    let slot = high & this.mask;
    while (this.low[slot] !== 0) slot = (slot + 1) & this.mask;
    this.high[slot] = high;
    this.low[slot] = low;
  }

  private grow(): void {
    const { high, low } = this;
    this.high = new Uint32Array(high.length * 2);
    this.low = new Uint32Array(low.length * 2);
    this.mask = this.high.length - 1;
    for (let slot = 0; slot < low.length; slot++)
      if (low[slot] !== 0) this.place(high[slot] as number, low[slot] as number);
  }
}

function mix(hash: number): number {
  let h = hash ^ (hash >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Two independent 32-bit hashes of a byte string, fed a character at a time. */
export class PathHasher {
  private a = 0x811c9dc5;
  private b = 0x3c6ef372;

  reset(): void {
    this.a = 0x811c9dc5;
    this.b = 0x3c6ef372;
  }

  push(char: number): void {
    this.a = Math.imul(this.a ^ char, 0x01000193);
    const b = Math.imul(this.b ^ char, 0x27d4eb2f);
    this.b = (b << 13) | (b >>> 19);
  }

  /** The hash of what was pushed so far, as PathSet takes it (the low half never 0). */
  get high(): number {
    return mix(this.a);
  }

  get low(): number {
    return (mix(this.b ^ 0x9e3779b9) | 1) >>> 0;
  }
}
