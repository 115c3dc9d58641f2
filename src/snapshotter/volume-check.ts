import { type ByteString, displayName } from "../tar/names.js";
import type { Member, MemberType } from "../tar/reader.js";
import { cleanName } from "./archive-map.js";
import { ArchiveContentError } from "./errors.js";
import { PathHasher, PathSet } from "./path-set.js";

const SLASH = 0x2f;
const DOT = 0x2e;

/** A member's path inside its volume, checked: relative, no "." or ".." segments, no NUL. */
export function memberPath(member: Pick<Member, "name">, root: ByteString): ByteString {
  const name = cleanName(member.name);
  if (name === root) return "";
  if (!name.startsWith(root) || name.charCodeAt(root.length) !== SLASH)
    throw new ArchiveContentError(`${displayName(member.name)} is not inside ${displayName(root)}`);
  const relative = name.slice(root.length + 1);
  let segment = 0;
  let dots = 0;
  for (let i = 0; i <= relative.length; i++) {
    const char = i < relative.length ? relative.charCodeAt(i) : SLASH;
    if (char === SLASH) {
      if (segment === 0 || segment === dots) escapes(member);
      segment = dots = 0;
    } else {
      if (char === 0) escapes(member);
      segment++;
      if (char === DOT && dots === segment - 1 && segment <= 2) dots++;
    }
  }
  return relative;
}

function escapes(member: Pick<Member, "name">): never {
  throw new ArchiveContentError(
    `archive entry ${JSON.stringify(displayName(member.name))} would escape its volume`,
  );
}

/**
 * What an exact look at the volume's earlier members found: the type each of these paths had last
 * before the member at `before` (absent: no member had that path).
 */
export type ConfirmTypes = (
  paths: readonly ByteString[],
  before: number,
) => Promise<Map<ByteString, MemberType>>;

/**
 * Checks every member of a volume, told one at a time in archive order, before anything on disk
 * changes: names stay inside the volume, nothing is stored below a member that is not a directory,
 * hard links point at an earlier non-directory member of the same volume, only types we can
 * restore. It remembers the paths that are not directories as hashes (PathSet), not as names:
 * 8 bytes a file. A hash that says an ancestor is a file is confirmed by `confirm` before the
 * archive is refused; a hard link whose target's hash is there is let through (extraction checks
 * that the target exists and is no directory, so a chance collision cannot make it write outside).
 */
export class VolumeCheck {
  private readonly others = new PathSet();
  private readonly hasher = new PathHasher();
  entries = 0;
  /** Bytes of file data. */
  bytes = 0;

  constructor(
    private readonly root: ByteString,
    private readonly confirm: ConfirmTypes,
  ) {}

  add(member: Member): void | Promise<void> {
    const relative = memberPath(member, this.root);
    const hasher = this.hasher;
    hasher.reset();
    let suspects: ByteString[] | undefined;
    for (let i = 0; i < relative.length; i++) {
      const char = relative.charCodeAt(i);
      if (char === SLASH && this.others.has(hasher.high, hasher.low)) {
        suspects ??= [];
        suspects.push(relative.slice(0, i));
      }
      hasher.push(char);
    }
    const high = hasher.high;
    const low = hasher.low;
    if (!suspects) return this.rest(member, relative, high, low);
    return this.confirm(suspects, member.headerOffset).then((types) => {
      for (const ancestor of suspects) {
        const kind = types.get(ancestor);
        if (kind !== undefined && kind !== "dir") {
          throw new ArchiveContentError(
            `${displayName(member.name)} is stored below ${displayName(ancestor)}, which the archive makes a ${kind}`,
          );
        }
      }
      this.rest(member, relative, high, low);
    });
  }

  private rest(member: Member, relative: ByteString, high: number, low: number): void {
    if (member.type === "other")
      throw new ArchiveContentError(
        `${displayName(member.name)}: unsupported entry type '${member.typeflag}'`,
      );
    if (member.type === "hardlink") {
      const target = cleanName(member.linkname);
      if (target !== this.root && !target.startsWith(`${this.root}/`)) {
        throw new ArchiveContentError(
          `${displayName(member.name)} is a hard link to ${displayName(member.linkname)}, outside its volume`,
        );
      }
      const hasher = this.hasher;
      hasher.reset();
      const targetRelative = memberPath({ name: target }, this.root);
      for (let i = 0; i < targetRelative.length; i++) hasher.push(targetRelative.charCodeAt(i));
      if (targetRelative === "" || !this.others.has(hasher.high, hasher.low)) {
        throw new ArchiveContentError(
          `${displayName(member.name)} is a hard link to ${displayName(member.linkname)}, which comes nowhere before it`,
        );
      }
    }
    if (relative !== "") {
      if (member.type === "dir") this.others.delete(high, low);
      else this.others.add(high, low);
    }
    this.entries++;
    if (member.type === "file") this.bytes += member.size;
  }
}
