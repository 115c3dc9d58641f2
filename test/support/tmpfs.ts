import { mkdir } from "node:fs/promises";
import { mount, umount } from "../../src/system/mount.js";
import type { TestScope } from "./scope.js";

/** A tmpfs mounted at `target` (created if missing), unmounted when the scope ends. */
export async function mountTmpfs(
  scope: TestScope,
  target: string,
  options: { source?: string; mountOptions?: readonly string[] } = {},
): Promise<void> {
  await mkdir(target, { recursive: true });
  await mount({
    source: options.source ?? "stowage-test",
    target,
    fsType: "tmpfs",
    ...(options.mountOptions ? { options: options.mountOptions } : {}),
  });
  scope.defer(`unmount ${target}`, () => umount(target));
}
