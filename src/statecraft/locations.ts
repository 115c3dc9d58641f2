import os from "node:os";
import path from "node:path";
import { isSea } from "node:sea";

/**
 * `lib/statecraft`: STATECRAFT_LIB_DIR, else beside the self-contained executable
 * (`PREFIX/bin/stowage` -> `PREFIX/lib/statecraft`, as `make install` lays it out), else this
 * package's own (dist/statecraft/ -> ../../lib/statecraft).
 */
export function libDir(): string {
  if (process.env.STATECRAFT_LIB_DIR) return process.env.STATECRAFT_LIB_DIR;
  if (isSea()) return path.resolve(path.dirname(process.execPath), "../lib/statecraft");
  return path.resolve(import.meta.dirname, "../../lib/statecraft");
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
