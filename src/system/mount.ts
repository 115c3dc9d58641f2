import { MountError } from "./errors.js";
import { type ExecOptions, run } from "./exec.js";

export interface MountRequest {
  source: string;
  target: string;
  fsType?: string;
  /** Options joined with commas for `-o` (e.g. ["bind", "ro"], ["subvol=/", "device=/dev/loop1"]). */
  options?: readonly string[];
}

type RunOptions = Pick<ExecOptions, "trace" | "cwd">;

export function mountArgs(request: MountRequest): string[] {
  const args: string[] = [];
  if (request.fsType) args.push("-t", request.fsType);
  if (request.options && request.options.length > 0) args.push("-o", request.options.join(","));
  args.push("--", request.source, request.target);
  return args;
}

export async function mount(request: MountRequest, options: RunOptions = {}): Promise<void> {
  try {
    await run("mount", mountArgs(request), options);
  } catch (error) {
    throw new MountError(`cannot mount ${request.source} on ${request.target}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

export async function umount(
  target: string,
  options: RunOptions & { lazy?: boolean; recursive?: boolean } = {},
): Promise<void> {
  const args: string[] = [];
  if (options.lazy) args.push("--lazy");
  if (options.recursive) args.push("--recursive");
  args.push("--", target);
  try {
    await run("umount", args, options);
  } catch (error) {
    throw new MountError(`cannot unmount ${target}: ${(error as Error).message}`, { cause: error });
  }
}
