import type { ByteString } from "../tar/names.js";
import type { Member } from "../tar/reader.js";
import { INDEX_NAME } from "./volume-index.js";

/** Consecutive members of an archive that go together: one byte range, never split. */
export interface Span {
  start: number;
  end: number;
  entries: number;
}

/** Where a small member's data is (an index file). */
export type MemberData = Pick<Member, "dataOffset" | "size">;

/** One backup of one prefix: the spans of its volume members and, last, its index. */
export interface Copy {
  prefix: ByteString;
  index: MemberData;
  indexSpan: Span;
  spans: Span[];
  /** A later complete copy of the same prefix exists: restore ignores this one. */
  superseded: boolean;
  /**
   * What the mapper's `watch` made of each volume (by id) while the copy's members went past;
   * undefined when nothing watched this prefix, or the copy had more volumes than are watched.
   */
  volumes?: ReadonlyMap<string, VolumeWatch>;
}

/** Told every member of one volume of one copy, in archive order, in the scan that maps the archive. */
export interface VolumeWatch {
  add(member: Member): void | Promise<void>;
  /** The copy's index came: nothing more will be added. */
  seal?(): void;
}

/** Makes the watch of a volume (`<prefix>/<id>`), or undefined to leave it unwatched. */
export type WatchVolume = (prefix: ByteString, id: string) => VolumeWatch | undefined;

/** Volumes watched per copy at most: more is no snapshotter copy (foreign content with hex names). */
const MAX_WATCHED = 4096;

/** The watches of the copy of one prefix that is being written (not closed by an index yet). */
interface OpenCopy {
  volumes: Map<string, VolumeWatch | null> | undefined;
}

export interface ArchiveMap {
  /** Every member of the archive, in archive order. */
  spans: Span[];
  copies: Copy[];
  /** Members of a prefix after its last index (an interrupted backup, ignored), per prefix. */
  incomplete: Map<ByteString, Span[]>;
  /** Members that belong to no prefix (other content of the archive): always kept. */
  foreign: Span[];
}

/** An archive name without "./" in front or "/" behind. */
export function cleanName(name: string): string {
  let start = 0;
  while (name.startsWith("./", start)) start += 2;
  let end = name.length;
  while (end > start && name.charCodeAt(end - 1) === 0x2f) end--;
  return start === 0 && end === name.length ? name : name.slice(start, end);
}

const VOLUME = /^[0-9a-f]{64}(\/|$)/;
const VOLUME_SEGMENT = /(^|\/)[0-9a-f]{64}(\/|$)/;

/** The volume id of a (clean) member name of this prefix's copy: `<prefix>/<id>[/...]`. */
export function volumeIdOf(name: string, prefix: ByteString): string | undefined {
  const rest = name.slice(prefix.length + 1);
  return name.startsWith(`${prefix}/`) && VOLUME.test(rest) ? rest.slice(0, 64) : undefined;
}

/** Add a member's byte range to spans in archive order, extending the last one when adjacent. */
export function addToSpans(spans: Span[], start: number, end: number, entries = 1): void {
  const last = spans.at(-1);
  if (last && last.end === start) {
    last.end = end;
    last.entries += entries;
  } else spans.push({ start, end, entries });
}

/** Every p such that `name` is `p/<volume id>` or below it. */
function volumePrefixes(name: string): ByteString[] {
  const found: ByteString[] = [];
  for (let slash = name.indexOf("/"); slash > 0; slash = name.indexOf("/", slash + 1))
    if (VOLUME.test(name.slice(slash + 1))) found.push(name.slice(0, slash));
  return found;
}

/** A run of members with the same possible prefixes, or one member that looks like an index. */
interface Piece {
  span: Span;
  prefixes: ByteString[];
  key: string;
  index?: { prefix: ByteString; data: MemberData };
}

/**
 * Groups an archive's members, told one at a time in archive order, into copies per prefix:
 * `<prefix>/<sha256>/...` members up to the next `<prefix>/volumes-data.yml` form one copy (the
 * original writes the index last, and so do we). Consecutive members that belong together are
 * kept as one span, so memory grows with the number of copies, not with the number of files.
 */
export class ArchiveMapper {
  private readonly pieces: Piece[] = [];
  private readonly open = new Map<ByteString, OpenCopy>();
  /** Index member offset -> the watches of the copy it closed. */
  private readonly sealed = new Map<number, OpenCopy>();

  /** `watch`: see Copy.volumes (only prefixes that can be one, without a 64-hex segment, are watched). */
  constructor(private readonly watch?: WatchVolume) {}

  add(member: Member): void | Promise<void> {
    const name = cleanName(member.name);
    const prefixes = volumePrefixes(name);
    const looksLikeIndex = member.type === "file" && name.endsWith(`/${INDEX_NAME}`);
    this.addPiece(member, name, prefixes, looksLikeIndex);
    if (!this.watch) return;
    // An index of a prefix that can be one (no 64-hex segment: then no volume prefix either)
    // closes its copy; a volumes-data.yml inside a volume is that volume's own file.
    if (looksLikeIndex && prefixes.length === 0) {
      const prefix = name.slice(0, -INDEX_NAME.length - 1);
      const copy = this.open.get(prefix);
      this.open.delete(prefix);
      if (copy?.volumes) for (const watch of copy.volumes.values()) watch?.seal?.();
      this.sealed.set(member.headerOffset, copy ?? { volumes: new Map() });
      return;
    }
    let told: Promise<void> | undefined;
    for (const prefix of prefixes) {
      const watch = this.watchOf(prefix, name.slice(prefix.length + 1, prefix.length + 65));
      const result = watch?.add(member);
      if (result) told = told ? told.then(() => result) : result;
    }
    return told;
  }

  private watchOf(prefix: ByteString, id: string): VolumeWatch | undefined {
    let copy = this.open.get(prefix);
    if (!copy) {
      copy = { volumes: VOLUME_SEGMENT.test(prefix) ? undefined : new Map() };
      this.open.set(prefix, copy);
    }
    const volumes = copy.volumes;
    if (!volumes) return undefined;
    let watch = volumes.get(id);
    if (watch === undefined) {
      if (volumes.size >= MAX_WATCHED) {
        copy.volumes = undefined;
        return undefined;
      }
      watch = (this.watch as WatchVolume)(prefix, id) ?? null;
      volumes.set(id, watch);
    }
    return watch ?? undefined;
  }

  private addPiece(member: Member, name: string, prefixes: ByteString[], looksLikeIndex: boolean): void {
    const key =
      prefixes.length === 0 ? "" : prefixes.length === 1 ? (prefixes[0] as string) : prefixes.join("\0");
    const last = this.pieces.at(-1);
    if (!looksLikeIndex && last && !last.index && last.key === key && last.span.end === member.headerOffset) {
      last.span.end = member.endOffset;
      last.span.entries++;
      return;
    }
    const span = { start: member.headerOffset, end: member.endOffset, entries: 1 };
    const index = looksLikeIndex
      ? {
          prefix: name.slice(0, -INDEX_NAME.length - 1),
          data: { dataOffset: member.dataOffset, size: member.size },
        }
      : undefined;
    this.pieces.push({ span, prefixes, key, ...(index ? { index } : {}) });
  }

  finish(): ArchiveMap {
    // A volumes-data.yml inside a volume (`p/<id>/.../volumes-data.yml`) is that volume's file.
    const indexLike = new Set(this.pieces.flatMap((piece) => (piece.index ? [piece.index.prefix] : [])));
    const indexes = new Set(
      this.pieces.filter((piece) => piece.index && !piece.prefixes.some((p) => indexLike.has(p))),
    );
    const known = new Set([...indexes].map((piece) => piece.index?.prefix));
    const prefixOf = (piece: Piece): ByteString | undefined => {
      let best: ByteString | undefined;
      for (const prefix of piece.prefixes)
        if (known.has(prefix) && (best === undefined || prefix.length > best.length)) best = prefix;
      return best;
    };

    const open = new Map<ByteString, Span[]>();
    const copies: Copy[] = [];
    const foreign: Span[] = [];
    for (const piece of this.pieces) {
      if (piece.index && indexes.has(piece)) {
        const { prefix, data } = piece.index;
        const watched = this.sealed.get(piece.span.start)?.volumes;
        const volumes =
          watched &&
          new Map([...watched].filter((entry): entry is [string, VolumeWatch] => entry[1] !== null));
        copies.push({
          prefix,
          index: data,
          indexSpan: piece.span,
          spans: open.get(prefix) ?? [],
          superseded: false,
          ...(volumes ? { volumes } : {}),
        });
        open.delete(prefix);
        continue;
      }
      const prefix = prefixOf(piece);
      if (prefix === undefined) foreign.push(piece.span);
      else if (open.has(prefix)) open.get(prefix)?.push(piece.span);
      else open.set(prefix, [piece.span]);
    }
    const newest = new Map<ByteString, Copy>();
    for (const copy of copies) newest.set(copy.prefix, copy);
    for (const copy of copies) copy.superseded = newest.get(copy.prefix) !== copy;
    return { spans: this.pieces.map((piece) => piece.span), copies, incomplete: open, foreign };
  }
}

/** The copy restore uses: the newest complete one. */
export function currentCopy(map: ArchiveMap, prefix: ByteString): Copy | undefined {
  return map.copies.filter((copy) => copy.prefix === prefix).at(-1);
}

/** Every span of this prefix: its complete copies and an interrupted one's leftovers. */
export function prefixSpans(map: ArchiveMap, prefix: ByteString): Set<Span> {
  const spans = new Set<Span>(map.incomplete.get(prefix));
  for (const copy of map.copies.filter((c) => c.prefix === prefix))
    for (const span of [...copy.spans, copy.indexSpan]) spans.add(span);
  return spans;
}

/** How many members these spans hold. */
export function entriesIn(spans: Iterable<Span>): number {
  let entries = 0;
  for (const span of spans) entries += span.entries;
  return entries;
}
