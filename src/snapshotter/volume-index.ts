import { createHash } from "node:crypto";
import path from "node:path";
import { parse, stringify } from "yaml";
import { ArchiveContentError } from "./errors.js";

export const INDEX_NAME = "volumes-data.yml";

/** One entry of `<prefix>/volumes-data.yml`, as the original writes it. */
export interface VolumeRecord {
  id: string;
  type: "dir" | "file";
  target: string;
}

/** The original's volume id: SHA-256 hex of the target path string. */
export function volumeId(target: string): string {
  return createHash("sha256").update(target).digest("hex");
}

export function renderIndex(records: readonly VolumeRecord[]): string {
  return stringify(records.map((r) => ({ id: r.id, type: r.type, target: r.target })));
}

/** Parse and check an index: every id is the SHA-256 of its absolute target. */
export function parseIndex(text: string, where: string): VolumeRecord[] {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch {
    throw new ArchiveContentError(`${where}: not valid YAML`);
  }
  if (!Array.isArray(raw)) throw new ArchiveContentError(`${where}: expected a list of volumes`);
  return raw.map((item, index) => {
    const entry = item as Partial<VolumeRecord> | null;
    if (
      !entry ||
      typeof entry.id !== "string" ||
      typeof entry.target !== "string" ||
      (entry.type !== "dir" && entry.type !== "file")
    ) {
      throw new ArchiveContentError(`${where}: entry ${index} needs id, type (dir|file) and target`);
    }
    if (!path.isAbsolute(entry.target))
      throw new ArchiveContentError(`${where}: target ${entry.target} is not absolute`);
    if (entry.id !== volumeId(entry.target)) {
      throw new ArchiveContentError(
        `${where}: id of ${entry.target} is not the SHA-256 of its path (corrupt or forged index)`,
      );
    }
    return { id: entry.id, type: entry.type, target: entry.target };
  });
}
