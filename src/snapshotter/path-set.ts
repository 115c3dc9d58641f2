/**
 * A set of byte-string paths kept as 63-bit hashes in two typed arrays: 8 bytes a slot instead of a
 * string and a map entry, at most 3/4 full and grown by half, so that a million paths take 12 MiB.
 * A hash says "maybe" for a path it never saw with a chance of about n / 2^63; callers that must
 * be exact confirm a hit otherwise.
 *
 * The hash is computed a character at a time, so the hash of every ancestor of a path ("a" and
 * "a/b" of "a/b/c") comes out on the way to the path's own (`PathHasher`).
 */
export class PathSet {
  private high = new Uint32Array(1024);
  private low = new Uint32Array(1024);
  private capacity = 1024;
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(high: number, low: number): boolean {
    return this.find(high, low) >= 0;
  }

  add(high: number, low: number): void {
    if (this.find(high, low) >= 0) return;
    if ((this.count + 1) * 4 > this.capacity * 3) this.grow();
    this.place(high, low);
    this.count++;
  }

  delete(high: number, low: number): void {
    let slot = this.find(high, low);
    if (slot < 0) return;
    this.count--;
    // Backward shift: later members of the probe run move up, so no lookup stops at the gap.
    const { capacity } = this;
    for (let next = this.after(slot); this.low[next] !== 0; next = this.after(next)) {
      const home = this.home(this.high[next] as number);
      if ((next - home + capacity) % capacity >= (next - slot + capacity) % capacity) {
        this.high[slot] = this.high[next] as number;
        this.low[slot] = this.low[next] as number;
        slot = next;
      }
    }
    this.low[slot] = 0;
  }

  /** Where a hash's probe starts: its high half scaled to the capacity (no power of 2 needed). */
  private home(high: number): number {
    return Math.floor((high * this.capacity) / 4294967296);
  }

  private after(slot: number): number {
    return slot + 1 === this.capacity ? 0 : slot + 1;
  }

  private find(high: number, low: number): number {
    for (let slot = this.home(high); this.low[slot] !== 0; slot = this.after(slot))
      if (this.low[slot] === low && this.high[slot] === high) return slot;
    return -1;
  }

  private place(high: number, low: number): void {
    let slot = this.home(high);
    while (this.low[slot] !== 0) slot = this.after(slot);
    this.high[slot] = high;
    this.low[slot] = low;
  }

  private grow(): void {
    const { high, low } = this;
    this.capacity = Math.ceil(this.capacity * 1.5);
    this.high = new Uint32Array(this.capacity);
    this.low = new Uint32Array(this.capacity);
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
