import { spawn } from "node:child_process";
import { once } from "node:events";
import { run } from "../../src/system/exec.js";
import { requireHost } from "./host.js";

/** How Apache's `htpasswd` hashes: -B (bcrypt, `$2y$`, cost -C), -s ({SHA}), -m ($apr1$), -d (crypt), -p (plain). */
export type HtpasswdFormat = { bcrypt: number } | "sha" | "md5" | "crypt" | "plain";

function formatFlags(format: HtpasswdFormat): string[] {
  if (typeof format === "object") return ["-B", "-C", String(format.bcrypt)];
  return { sha: ["-s"], md5: ["-m"], crypt: ["-d"], plain: ["-p"] }[format];
}

/**
 * Add or update a user in an htpasswd file with the real Apache tool (apache2-utils), as users do:
 * `htpasswd -b [-c] FILE USER PASSWORD`. Creates the file when `create` is set.
 */
export async function htpasswd(
  file: string,
  user: string,
  password: string,
  format: HtpasswdFormat = { bcrypt: 5 },
  options: { create?: boolean } = {},
): Promise<void> {
  requireHost({ commands: ["htpasswd"] });
  const args = ["-b", ...(options.create ? ["-c"] : []), ...formatFlags(format), file, user, password];
  await run("htpasswd", args);
}

/** A new htpasswd file with these users, every one hashed by the real `htpasswd` in its format. */
export async function htpasswdFile(
  file: string,
  users: ReadonlyArray<[user: string, password: string, format?: HtpasswdFormat]>,
): Promise<string> {
  for (const [index, [user, password, format]] of users.entries()) {
    await htpasswd(file, user, password, format, { create: index === 0 });
  }
  return file;
}

/**
 * Run `htpasswd` exactly as a person types it (e.g. seed 002's `htpasswd -B restic/.htpasswd
 * username`), answering its password prompts on a terminal: util-linux `script` gives it a pty, and
 * each answer is sent only once its prompt showed (getpass flushes input typed ahead).
 */
export async function htpasswdAtPrompt(commandLine: string, password: string, cwd: string): Promise<void> {
  requireHost({ commands: ["htpasswd", "script"] });
  const child = spawn("script", ["--quiet", "--return", "--command", commandLine, "/dev/null"], {
    cwd,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  const answered = new Set<string>();
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
    for (const prompt of ["New password:", "Re-type new password:"]) {
      if (output.includes(prompt) && !answered.has(prompt)) {
        answered.add(prompt);
        child.stdin.write(`${password}\n`);
      }
    }
  });
  const [status] = (await once(child, "exit")) as [number | null];
  child.stdin.destroy();
  if (status !== 0) throw new Error(`${commandLine} failed (${status}):\n${output}`);
}
