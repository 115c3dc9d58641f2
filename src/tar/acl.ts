/**
 * POSIX ACLs as the kernel stores them in `system.posix_acl_access` / `_default` (a little-endian
 * version 2 header, then tag/perm/id entries), turned into the text GNU tar keeps in its
 * SCHILY.acl.access / SCHILY.acl.default records (numeric ids, one entry per line).
 */
const TAGS: Record<number, string> = {
  1: "user",
  2: "user",
  4: "group",
  8: "group",
  16: "mask",
  32: "other",
};
const QUALIFIED = new Set([0x02, 0x08]);

export function posixAclToText(value: Buffer): string | undefined {
  if (value.length < 4 || value.readUInt32LE(0) !== 2 || (value.length - 4) % 8 !== 0) return undefined;
  const lines: string[] = [];
  for (let offset = 4; offset < value.length; offset += 8) {
    const tag = value.readUInt16LE(offset);
    const perm = value.readUInt16LE(offset + 2);
    const id = value.readUInt32LE(offset + 4);
    const name = TAGS[tag];
    if (name === undefined) return undefined;
    const rights = `${perm & 4 ? "r" : "-"}${perm & 2 ? "w" : "-"}${perm & 1 ? "x" : "-"}`;
    lines.push(`${name}:${QUALIFIED.has(tag) ? id : ""}:${rights}`);
  }
  return `${lines.join("\n")}\n`;
}
