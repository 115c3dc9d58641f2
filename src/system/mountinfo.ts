import { readFile, realpath } from "node:fs/promises";
import path from "node:path";

/** One line of /proc/<pid>/mountinfo (see proc(5)), with the kernel's octal escapes decoded. */
export interface MountEntry {
  mountId: number;
  parentId: number;
  /** "major:minor" of the device. */
  majorMinor: string;
  /** Path inside the filesystem that is mounted here (a subvolume or bind source). */
  root: string;
  mountPoint: string;
  mountOptions: string[];
  optionalFields: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

/** The kernel writes space, tab, newline and backslash in paths as `\ooo` octal escapes. */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export function parseMountinfoLine(line: string): MountEntry {
  const fields = line.split(" ");
  const separator = fields.indexOf("-", 6);
  if (fields.length < 10 || separator < 0 || fields.length < separator + 4) {
    throw new Error(`malformed mountinfo line: ${JSON.stringify(line)}`);
  }
  const at = (index: number): string => fields[index] ?? "";
  return {
    mountId: Number(at(0)),
    parentId: Number(at(1)),
    majorMinor: at(2),
    root: unescapeMountField(at(3)),
    mountPoint: unescapeMountField(at(4)),
    mountOptions: at(5).split(","),
    optionalFields: fields.slice(6, separator),
    fsType: unescapeMountField(at(separator + 1)),
    source: unescapeMountField(at(separator + 2)),
    superOptions: at(separator + 3).split(","),
  };
}

export function parseMountinfo(text: string): MountEntry[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map(parseMountinfoLine);
}

export async function readMountinfo(file = "/proc/self/mountinfo"): Promise<MountEntry[]> {
  return parseMountinfo(await readFile(file, "utf8"));
}

/** The mount visible at a path: the last entry for that mount point, since later mounts stack on top. */
export function findMount(entries: readonly MountEntry[], mountPoint: string): MountEntry | undefined {
  const wanted = path.resolve(mountPoint);
  for (let index = entries.length - 1; index >= 0; index--) {
    const entry = entries[index];
    if (entry && entry.mountPoint === wanted) return entry;
  }
  return undefined;
}

/** The mount that contains a path: the entry with the longest mount point that is a prefix of it. */
export function findContainingMount(entries: readonly MountEntry[], target: string): MountEntry | undefined {
  const wanted = path.resolve(target);
  let best: MountEntry | undefined;
  for (const entry of entries) {
    const point = entry.mountPoint;
    const inside = point === "/" || wanted === point || wanted.startsWith(`${point}/`);
    if (inside && (!best || point.length >= best.mountPoint.length)) best = entry;
  }
  return best;
}

/**
 * Is this path (symlinks resolved) a mount point in our mount namespace, such as a single file
 * bind-mounted into a container? A path that does not exist is not.
 */
export async function isMountPoint(target: string, file?: string): Promise<boolean> {
  let real: string;
  try {
    real = await realpath(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  return findMount(await readMountinfo(file), real) !== undefined;
}
