import { mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { createPasswordFile } from "./htpasswd-users.js";

/** restic/rest-server's image conventions, read from the container's environment. */
export interface ImageSettings {
  dataDirectory: string;
  passwordFile: string;
  noAuth: boolean;
  /** OPTIONS, split on white space as upstream's shell entrypoint does. */
  options: string[];
}

export function imageSettings(env: NodeJS.ProcessEnv): ImageSettings {
  const dataDirectory = env.DATA_DIRECTORY || "/data";
  return {
    dataDirectory,
    passwordFile: env.PASSWORD_FILE || path.join(dataDirectory, ".htpasswd"),
    noAuth: Boolean(env.DISABLE_AUTHENTICATION),
    options: (env.OPTIONS ?? "").split(/\s+/).filter((word) => word !== ""),
  };
}

export interface PreparedImage {
  /** rest-server's arguments: --path, the htpasswd file or --no-auth, the caller's, OPTIONS. */
  args: string[];
  /** Nobody can log in yet: the caller warns, as upstream's image does. */
  noUsers: boolean;
  /** Who the server should run as: the data directory's owner when that is not root. */
  runAs?: { uid: number; gid: number };
}

/**
 * Make the data directory and, with authentication, an empty password file when there is none:
 * 0600 (it holds password hashes: upstream's #318) and owned like the data directory, whose owner
 * the server runs as.
 */
export async function prepareImage(settings: ImageSettings, args: readonly string[]): Promise<PreparedImage> {
  await mkdir(settings.dataDirectory, { recursive: true });
  const owner = await stat(settings.dataDirectory);
  let noUsers = false;
  const auth: string[] = [];
  if (settings.noAuth) {
    auth.push("--no-auth");
  } else {
    await createPasswordFile(settings.passwordFile, owner);
    noUsers = (await stat(settings.passwordFile)).size === 0;
    auth.push("--htpasswd-file", settings.passwordFile);
  }
  const asRoot = process.getuid?.() === 0;
  return {
    args: ["--path", settings.dataDirectory, ...auth, ...args, ...settings.options],
    noUsers,
    ...(asRoot && owner.uid !== 0 ? { runAs: { uid: owner.uid, gid: owner.gid } } : {}),
  };
}

/** Become `runAs` for good: no supplementary groups, then the group, then the user. */
export function dropPrivileges(runAs: { uid: number; gid: number }): void {
  process.setgroups?.([]);
  process.setgid?.(runAs.gid);
  process.setuid?.(runAs.uid);
}
