import { mkdir, stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { devicesWithUuid } from "../system/blkid.js";
import { ConfigError, MountError } from "../system/errors.js";
import type { Logger } from "../system/log.js";
import { mount, umount } from "../system/mount.js";
import { isMountPoint } from "../system/mountinfo.js";

/** The gokrazy wrapper's disk (seed 002): MNT_SOURCE, MNT_TARGET, MNT_FSTYPE, MNT_DATA. */
export interface DiskSpec {
  /** A device path or `UUID=...`. */
  source: string;
  target: string;
  fsType: string | undefined;
  /** Mount data, e.g. `compress=zstd` or `device=/dev/sda,device=/dev/sdb`. */
  data: string | undefined;
  /** How long to wait for the device to appear and mount. */
  timeoutMs: number;
}

const RETRY_MS = 500;

export function diskSpecFrom(values: {
  source?: string;
  target?: string;
  fsType?: string;
  data?: string;
  timeoutMs: number;
}): DiskSpec | undefined {
  const { source, target } = values;
  if (!source && !target) return undefined;
  if (!source || !target) {
    throw new ConfigError(
      "a disk mount needs both a source (MNT_SOURCE/--mount-source) and a target (MNT_TARGET/--mount-target)",
    );
  }
  if (!target.startsWith("/")) throw new ConfigError(`mount target must be an absolute path: ${target}`);
  return {
    source,
    target,
    fsType: values.fsType || undefined,
    data: values.data || undefined,
    timeoutMs: values.timeoutMs,
  };
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** The devices behind the source, waiting (bounded) for them to appear. */
async function resolveDevices(source: string, deadline: number): Promise<string[]> {
  for (;;) {
    const devices = source.startsWith("UUID=")
      ? await devicesWithUuid(source.slice(5))
      : (await exists(source))
        ? [source]
        : [];
    if (devices.length > 0) return devices;
    if (Date.now() >= deadline) throw new MountError(`device ${source} did not appear in time`);
    await sleep(RETRY_MS);
  }
}

/** Mount options: the user's data plus `device=` for every device of a multi-device filesystem. */
export function mountOptions(data: string | undefined, devices: readonly string[]): string[] {
  const options = data ? data.split(",").filter((o) => o !== "") : [];
  if (devices.length > 1) {
    for (const device of devices) if (!options.includes(`device=${device}`)) options.push(`device=${device}`);
  }
  return options;
}

/**
 * Mount the disk before serving; returns how to unmount it. An already-mounted target is used as
 * it is (and left mounted). Gives up with a MountError (exit 125) after the timeout.
 */
export async function mountDisk(spec: DiskSpec, log: Logger): Promise<() => Promise<void>> {
  await mkdir(spec.target, { recursive: true });
  if (await isMountPoint(spec.target)) {
    log.warn({ action: "mount", target: spec.target }, "target is already a mount point; using it as it is");
    return async () => {};
  }
  const deadline = Date.now() + spec.timeoutMs;
  for (;;) {
    const devices = await resolveDevices(spec.source, deadline);
    const request = {
      source: devices[0] as string,
      target: spec.target,
      ...(spec.fsType ? { fsType: spec.fsType } : {}),
      options: mountOptions(spec.data, devices),
    };
    try {
      await mount(request);
      log.info({ action: "mount", source: spec.source, devices, target: spec.target }, "disk mounted");
      return async () => {
        await umount(spec.target);
        log.info({ action: "umount", target: spec.target }, "disk unmounted");
      };
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      log.warn({ action: "mount", err: (error as Error).message }, "mount failed; retrying");
      await sleep(RETRY_MS);
    }
  }
}
