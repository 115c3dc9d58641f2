import { access, constants, readdir, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "../system/errors.js";
import { EscapeError, unescapePath } from "./escape.js";

const SUFFIX = ".state.sh";

/** One `<escaped target>[+<escaped source>].state.sh` file of a paths.d directory. */
export interface StateScript {
  /** The name without `.state.sh`: what setup_path receives. */
  id: string;
  target: string;
  source: string;
  file: string;
  /** Where a symlinked script really lives (for display). */
  resolved: string;
  mode: number;
}

/** `-p` as given: relative to the cwd, not `/`, an existing readable directory. */
export async function resolvePathsDir(dir: string): Promise<string> {
  const absolute = path.resolve(dir);
  if (absolute === "/") throw new ConfigError("invalid paths directory '/'");
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(absolute);
  } catch {
    throw new ConfigError(`paths directory ${absolute} does not exist`);
  }
  if (!info.isDirectory()) throw new ConfigError(`paths directory ${absolute} is not a directory`);
  try {
    await access(absolute, constants.R_OK | constants.X_OK);
  } catch {
    throw new ConfigError(`paths directory ${absolute} is not readable`);
  }
  return absolute;
}

export function parseScriptId(id: string): { target: string; source: string } {
  const plus = id.indexOf("+");
  const targetName = plus < 0 ? id : id.slice(0, plus);
  const sourceName = plus < 0 ? id : id.slice(plus + 1);
  try {
    return { target: unescapePath(targetName), source: unescapePath(sourceName) };
  } catch (error) {
    if (error instanceof EscapeError) throw new ConfigError(error.message);
    throw error;
  }
}

/**
 * Every state script of the directory, parents before children (byte order of the escaped
 * target). A badly named script is an error, not silently skipped.
 */
export async function discoverScripts(dir: string): Promise<StateScript[]> {
  const names = (await readdir(dir)).filter((name) => name.endsWith(SUFFIX)).sort();
  const problems: string[] = [];
  const scripts: StateScript[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const id = name.slice(0, -SUFFIX.length);
    try {
      const { target, source } = parseScriptId(id);
      const info = await stat(file).catch(() => undefined);
      if (!info?.isFile()) throw new ConfigError("not a regular file (or a broken symlink)");
      await access(file, constants.R_OK).catch(() => {
        throw new ConfigError("not readable");
      });
      scripts.push({ id, target, source, file, resolved: await realpath(file), mode: info.mode & 0o7777 });
    } catch (error) {
      problems.push(`${name}: ${(error as Error).message}`);
    }
  }
  if (problems.length > 0)
    throw new ConfigError(`invalid state scripts in ${dir}:\n  ${problems.join("\n  ")}`);
  const key = (script: StateScript) => Buffer.from(script.target === "/" ? "" : script.target.slice(1));
  return scripts.sort((a, b) => Buffer.compare(key(a), key(b)));
}
