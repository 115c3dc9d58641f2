import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { getAsset, isSea } from "node:sea";

/** Check a password against a bcrypt hash. */
export type BcryptCompare = (password: string, hash: string) => Promise<boolean>;
/** A new bcrypt hash (`$2b$`) of a password at a cost (log2 of the rounds). */
export type BcryptHash = (password: string, cost: number) => Promise<string>;

export interface BcryptImplementation {
  compare: BcryptCompare;
  hash: BcryptHash;
  /** "native" (the bcrypt addon, off the main thread) or "bcryptjs" (pure JavaScript). */
  kind: "native" | "bcryptjs";
  /** Why the native addon could not be used, when it could not. */
  fallbackReason?: string;
}

type Callback<T> = (error: Error | null, value: T) => void;

interface NativeBinding {
  compare(data: string, hash: string, callback: Callback<boolean>): void;
  gen_salt(minor: string, rounds: number, seed: Buffer, callback: Callback<string>): void;
  encrypt(data: string, salt: string, callback: Callback<string>): void;
}

function call<T>(start: (callback: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => start((error, value) => (error ? reject(error) : resolve(value))));
}

function fromBinding(binding: NativeBinding): Pick<BcryptImplementation, "compare" | "hash"> {
  return {
    compare: (password, hash) => call((done) => binding.compare(password, hash, done)),
    hash: async (password, cost) => {
      const salt = await call<string>((done) => binding.gen_salt("b", cost, randomBytes(16), done));
      return call((done) => binding.encrypt(password, salt, done));
    },
  };
}

/** Load a .node file as a module; undefined (with the reason) when the system refuses it. */
function dlopen(file: string): NativeBinding | string {
  const module = { exports: {} as NativeBinding };
  try {
    process.dlopen(module, file);
    return module.exports;
  } catch (error) {
    return `${file}: ${(error as Error).message}`;
  }
}

/**
 * The executable carries the addon as an asset. A file installed beside it is used first
 * (`PREFIX/lib/stowage/bcrypt.node`); else the asset is written to a private temp file, loaded and
 * deleted, trying directories that may allow executable mappings (the temp dir is often noexec).
 */
function nativeInExecutable(): NativeBinding | string {
  const reasons: string[] = [];
  const installed = path.resolve(path.dirname(process.execPath), "../lib/stowage/bcrypt.node");
  const beside = dlopen(installed);
  if (typeof beside !== "string") return beside;
  reasons.push(beside);
  let asset: ArrayBuffer;
  try {
    asset = getAsset("bcrypt.node");
  } catch (error) {
    return `no bcrypt asset in the executable: ${(error as Error).message}`;
  }
  const dirs = [process.env.STOWAGE_NATIVE_DIR, os.tmpdir(), "/dev/shm", process.env.XDG_RUNTIME_DIR, "/run"];
  for (const base of dirs.filter((dir): dir is string => Boolean(dir))) {
    let dir: string | undefined;
    try {
      dir = mkdtempSync(path.join(base, "stowage-native-"));
      const file = path.join(dir, `bcrypt-${randomBytes(4).toString("hex")}.node`);
      writeFileSync(file, Buffer.from(asset), { mode: 0o500 });
      const loaded = dlopen(file);
      if (typeof loaded !== "string") return loaded;
      reasons.push(loaded);
    } catch (error) {
      reasons.push(`${base}: ${(error as Error).message}`);
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }
  return reasons.join("; ");
}

/** The native bcrypt addon where it loads, else bcryptjs (same hashes, slower, on the main thread). */
export async function loadBcrypt(): Promise<BcryptImplementation> {
  let reason: string;
  if (isSea()) {
    const binding = nativeInExecutable();
    if (typeof binding !== "string") return { ...fromBinding(binding), kind: "native" };
    reason = binding;
  } else {
    try {
      const bcrypt = (await import("bcrypt")).default;
      return {
        compare: (password, hash) => bcrypt.compare(password, hash),
        hash: (password, cost) => bcrypt.hash(password, cost),
        kind: "native",
      };
    } catch (error) {
      reason = (error as Error).message;
    }
  }
  const bcryptjs = (await import("bcryptjs")).default;
  return {
    compare: (password, hash) => bcryptjs.compare(password, hash),
    hash: (password, cost) => bcryptjs.hash(password, cost),
    kind: "bcryptjs",
    fallbackReason: reason,
  };
}
