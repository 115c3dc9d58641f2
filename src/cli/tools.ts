/** A command of the package: what `stowage --help` lists and what `stowage <name> ...` runs. */
export interface ToolEntry {
  name: string;
  summary: string;
  /**
   * The programs it runs on the host (directly, or from the shell scripts it runs), resolved on
   * PATH, or `PACKAGE:*` for every program of a Debian package: the container image of the command
   * carries exactly these (see scripts/image-rootfs.sh).
   */
  programs: readonly string[];
  /** Loaded lazily so `stowage --help` does not import every tool. Returns the exit status. */
  load: () => Promise<(argv: string[]) => Promise<number>>;
}

export const TOOLS: readonly ToolEntry[] = [
  {
    name: "statecraft",
    summary: "run a backup command inside a private, read-only view of the host built from paths.d",
    // Its helper library and the state scripts it ships, and a shell's usual tools for a user's
    // state scripts (coreutils: every program of the Debian package).
    programs: [
      ...["bash", "coreutils:*", "sed", "grep", "find", "xargs", "jq", "tar", "xz", "gzip"],
      ...["mount", "umount", "mountpoint", "findmnt", "blkid", "unshare", "flock", "btrfs"],
    ],
    load: async () => (await import("./statecraft-cli.js")).main,
  },
  {
    name: "snapshotter",
    summary: "save every volume of a container into an appendable tar, and restore it",
    // bash and head: the long-lived getfattr helper of a backup's walk (system/xattr.ts).
    programs: ["flock", "bash", "head", "xargs", "getfattr", "setfattr", "mkfifo", "mknod"],
    load: async () => (await import("./snapshotter-cli.js")).main,
  },
  {
    name: "rest-server",
    summary: "restic REST backend server; can mount its backing disk first",
    // Mounting its disk first (--device/--uuid) needs mount and blkid, and maintain runs restic: a
    // host install (or the umbrella image), not the image. --mirror's queue lock takes flock.
    programs: ["flock"],
    load: async () => (await import("./rest-server-cli.js")).main,
  },
  {
    name: "wafers",
    summary: "named overlayfs stacks of layered root filesystems",
    programs: ["mount", "umount", "flock", "bash", "head", "xargs", "getfattr", "setfattr"],
    load: async () => (await import("./wafers-cli.js")).main,
  },
  {
    name: "backrest-sidecar",
    summary: "turn Docker labels into Backrest plans; one-shot backups with quiesce and retention",
    // rcb mode runs the docker CLI: a host install's, never the image's (see README).
    programs: [
      "bash",
      "sh",
      "mkdir",
      "touch",
      "restic",
      "unshare",
      "mount",
      "umount",
      "btrfs",
      "blkid",
      "flock",
    ],
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
    programs: [],
    load: async () => (await import("./image-cli.js")).restServerImage,
  },
  {
    name: "create_user",
    summary: "add or update a rest-server user in PASSWORD_FILE",
    programs: [],
    load: async () => (await import("./image-cli.js")).createUser,
  },
  {
    name: "delete_user",
    summary: "remove a rest-server user from PASSWORD_FILE",
    programs: [],
    load: async () => (await import("./image-cli.js")).deleteUserMain,
  },
];

/** The programs a command's image carries: the umbrella's ("stowage") are every command's. */
export function programsOf(command: string): readonly string[] | undefined {
  if (command === "stowage") return [...new Set(TOOLS.flatMap((tool) => tool.programs))].sort();
  return TOOLS.find((tool) => tool.name === command)?.programs;
}

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
