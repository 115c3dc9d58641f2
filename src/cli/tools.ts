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

/**
 * The container images' helpers: run through symlinks of their names inside the images, never
 * listed (`make install` does not put them on a host).
 */
const IMAGE_HELPERS: readonly ToolEntry[] = [
  {
    name: "rest-server-image",
    summary: "rest-server with restic/rest-server's image conventions (DATA_DIRECTORY, OPTIONS, ...)",
    load: async () => (await import("./image-cli.js")).restServerImage,
  },
  {
    name: "create_user",
    summary: "add or update a rest-server user in PASSWORD_FILE",
    load: async () => (await import("./image-cli.js")).createUser,
  },
  {
    name: "delete_user",
    summary: "remove a rest-server user from PASSWORD_FILE",
    load: async () => (await import("./image-cli.js")).deleteUserMain,
  },
];

export function findTool(name: string): ToolEntry | undefined {
  return TOOLS.find((tool) => tool.name === name) ?? IMAGE_HELPERS.find((tool) => tool.name === name);
}

/**
 * The command an invocation names: the symlink's name, or for the images' `stowage-entrypoint` the
 * image's command (STOWAGE_COMMAND; rest-server with its image conventions). Undefined: `stowage`.
 */
export function toolForInvocation(invokedAs: string, env: NodeJS.ProcessEnv): ToolEntry | undefined {
  if (invokedAs !== "stowage-entrypoint") return findTool(invokedAs);
  const command = env.STOWAGE_COMMAND || "stowage";
  return findTool(command === "rest-server" ? "rest-server-image" : command);
}
