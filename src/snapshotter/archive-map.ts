import type { Member } from "../tar/reader.js";
import { INDEX_NAME } from "./volume-index.js";

/** One backup of one prefix: its volume members and, last, its index. */
export interface Copy {
  prefix: string;
  index: Member;
  members: Member[];
  /** A later complete copy of the same prefix exists: restore ignores this one. */
  superseded: boolean;
}

export interface ArchiveMap {
  copies: Copy[];
  /** Members of a prefix after its last index: an interrupted backup, ignored. */
  incomplete: Member[];
  /** Members that belong to no prefix (other content of the archive): always kept. */
  foreign: Member[];
}

/** An archive name without "./" in front or "/" behind. */
export function cleanName(name: string): string {
  return name.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
}

const VOLUME = /^[0-9a-f]{64}(\/|$)/;

/**
 * Group an archive's members into copies per prefix: `<prefix>/<sha256>/...` members up to the
 * next `<prefix>/volumes-data.yml` form one copy (the original writes the index last, and so do we).
 */
export function mapArchive(members: readonly Member[]): ArchiveMap {
  const prefixes = new Set<string>();
  for (const member of members) {
    const name = cleanName(member.name);
    if (name.endsWith(`/${INDEX_NAME}`) && member.type === "file")
      prefixes.add(name.slice(0, -INDEX_NAME.length - 1));
  }
  const byLength = [...prefixes].sort((a, b) => b.length - a.length);
  const prefixOf = (name: string): string | undefined =>
    byLength.find((prefix) => name.startsWith(`${prefix}/`) && VOLUME.test(name.slice(prefix.length + 1)));

  const open = new Map<string, Member[]>();
  const copies: Copy[] = [];
  const foreign: Member[] = [];
  for (const member of members) {
    const name = cleanName(member.name);
    const indexPrefix = name.endsWith(`/${INDEX_NAME}`) ? name.slice(0, -INDEX_NAME.length - 1) : undefined;
    if (indexPrefix !== undefined && prefixes.has(indexPrefix) && member.type === "file") {
      copies.push({
        prefix: indexPrefix,
        index: member,
        members: open.get(indexPrefix) ?? [],
        superseded: false,
      });
      open.delete(indexPrefix);
      continue;
    }
    const prefix = prefixOf(name);
    if (prefix === undefined) {
      foreign.push(member);
    } else {
      const list = open.get(prefix);
      if (list) list.push(member);
      else open.set(prefix, [member]);
    }
  }
  const newest = new Map<string, Copy>();
  for (const copy of copies) newest.set(copy.prefix, copy);
  for (const copy of copies) copy.superseded = newest.get(copy.prefix) !== copy;
  return { copies, incomplete: [...open.values()].flat(), foreign };
}

/** The copy restore uses: the newest complete one. */
export function currentCopy(map: ArchiveMap, prefix: string): Copy | undefined {
  return map.copies.filter((copy) => copy.prefix === prefix).at(-1);
}
