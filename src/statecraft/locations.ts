import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** `lib/statecraft` of this package (dist/statecraft/ -> ../../lib/statecraft), or STATECRAFT_LIB_DIR. */
export function libDir(): string {
  return process.env.STATECRAFT_LIB_DIR ?? path.resolve(import.meta.dirname, "../../lib/statecraft");
}

const isRoot = () => process.getuid?.() === 0;

/** Where run directories go: /run/statecraft for root, $XDG_RUNTIME_DIR/statecraft otherwise. */
export function runBase(): string {
  if (process.env.STATECRAFT_RUN_BASE) return process.env.STATECRAFT_RUN_BASE;
  if (isRoot() || !process.env.XDG_RUNTIME_DIR) return "/run/statecraft";
  return path.join(process.env.XDG_RUNTIME_DIR, "statecraft");
}

/** Where cleanup journals persist across crashes and reboots. */
export function stateDir(explicit?: string): string {
  if (explicit) return path.resolve(explicit);
  if (process.env.STATECRAFT_STATE_DIR) return process.env.STATECRAFT_STATE_DIR;
  if (isRoot()) return "/var/lib/statecraft";
  const base = process.env.XDG_STATE_HOME ?? path.join(os.homedir(), ".local", "state");
  return path.join(base, "statecraft");
}

export function journalDir(state: string): string {
  return path.join(state, "journal");
}

export function defaultPathsDir(): string {
  return path.join(libDir(), "paths.d");
}

export function hasLibrary(dir: string): boolean {
  return existsSync(path.join(dir, "runner.sh"));
}
