import { waferMounts } from "./mounts.js";
import type { WaferStore } from "./store.js";

export interface WaferInfo {
  name: string;
  parent: string | null;
  /** Layers of its stack, its own included; null when the ancestry is broken. */
  depth: number | null;
  mounts: Array<{ path: string; kind: "overlay" | "bind"; writable: boolean }>;
  /** Why its stack cannot be mounted (cycle, missing ancestor, corrupt parent file). */
  problem: string | null;
}

/** Every wafer with its parent, depth, mounts and any ancestry problem (`wafers list`). */
export async function listWafers(store: WaferStore): Promise<WaferInfo[]> {
  const names = store.names();
  const mounts = await waferMounts(store);
  const infos: WaferInfo[] = [];
  for (const name of names) {
    let parent: string | null = null;
    let depth: number | null = null;
    let problem: string | null = null;
    try {
      parent = store.parentOf(name) ?? null;
      depth = store.ancestry(name).length;
    } catch (error) {
      problem = (error as Error).message;
    }
    const own = mounts
      .filter((mount) => mount.name === name)
      .map((mount) => ({ path: mount.mountPoint, kind: mount.kind, writable: mount.writable }));
    infos.push({ name, parent, depth, mounts: own, problem });
  }
  return infos;
}

export function formatList(infos: readonly WaferInfo[]): string {
  const rows = [["NAME", "PARENT", "DEPTH", "MOUNTED"]];
  for (const info of infos) {
    rows.push([
      info.name,
      info.parent ?? "-",
      info.depth === null ? "!" : String(info.depth),
      info.problem ??
        (info.mounts.map((m) => `${m.path} (${m.kind}${m.writable ? "" : ", ro"})`).join(", ") || "-"),
    ]);
  }
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length))) ?? [];
  return rows
    .map((row) =>
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("  "),
    )
    .join("\n");
}

/** The wafers as a forest under their root ancestors; broken ancestries are listed apart. */
export function formatTree(infos: readonly WaferInfo[]): string {
  const known = new Set(infos.map((info) => info.name));
  const children = new Map<string, WaferInfo[]>();
  const roots: WaferInfo[] = [];
  for (const info of infos) {
    if (info.parent === null || info.problem !== null || !known.has(info.parent)) roots.push(info);
    else children.set(info.parent, [...(children.get(info.parent) ?? []), info]);
  }
  const label = (info: WaferInfo) => {
    const where = info.mounts.map((m) => m.path).join(", ");
    return `${info.name}${where ? `  [stacked at ${where}]` : ""}${info.problem ? `  !! ${info.problem}` : ""}`;
  };
  const lines: string[] = [];
  const walk = (info: WaferInfo, prefix: string, last: boolean, top: boolean) => {
    lines.push(top ? label(info) : `${prefix}${last ? "└── " : "├── "}${label(info)}`);
    const kids = children.get(info.name) ?? [];
    const next = top ? "" : `${prefix}${last ? "    " : "│   "}`;
    for (const [index, kid] of kids.entries()) walk(kid, next, index === kids.length - 1, false);
  };
  for (const root of roots) walk(root, "", true, true);
  return lines.join("\n");
}
