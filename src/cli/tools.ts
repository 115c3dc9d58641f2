/** A command of the package: what `stowage --help` lists and what `stowage <name> ...` runs. */
export interface ToolEntry {
  name: string;
  summary: string;
  /** Loaded lazily so `stowage --help` does not import every tool. Returns the exit status. */
  load: () => Promise<(argv: string[]) => Promise<number>>;
}

export const TOOLS: readonly ToolEntry[] = [
  {
    name: "statecraft",
    summary: "run a backup command inside a private, read-only view of the host built from paths.d",
    load: async () => (await import("./statecraft-cli.js")).main,
  },
  {
    name: "snapshotter",
    summary: "save every volume of a container into an appendable tar, and restore it",
    load: async () => (await import("./snapshotter-cli.js")).main,
  },
  {
    name: "rest-server",
    summary: "restic REST backend server; can mount its backing disk first",
    load: async () => (await import("./rest-server-cli.js")).main,
  },
  {
    name: "wafers",
    summary: "named overlayfs stacks of layered root filesystems",
    load: async () => (await import("./wafers-cli.js")).main,
  },
  {
    name: "backrest-sidecar",
    summary: "turn Docker labels into Backrest plans; one-shot backups with quiesce and retention",
    load: async () => (await import("./backrest-sidecar-cli.js")).main,
  },
];

export function findTool(name: string): ToolEntry | undefined {
  return TOOLS.find((tool) => tool.name === name);
}
