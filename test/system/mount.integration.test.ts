import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { MountError } from "../../src/system/errors.js";
import { mount, mountArgs, umount } from "../../src/system/mount.js";
import { findMount, isMountPoint, readMountinfo } from "../../src/system/mountinfo.js";
import { useScope } from "../support/scope.js";

describe("mount helpers (real mounts)", () => {
  const scope = useScope();

  it("builds the argument list with options and `--`", () => {
    expect(
      mountArgs({ source: "/dev/x", target: "/mnt", fsType: "btrfs", options: ["ro", "subvol=/"] }),
    ).toEqual(["-t", "btrfs", "-o", "ro,subvol=/", "--", "/dev/x", "/mnt"]);
  });

  it("mounts a tmpfs at a path with a space, sees it in mountinfo, and unmounts it", async () => {
    const target = path.join(await scope.tempDir(), "with space");
    await mkdir(target);
    await mount({ source: "stowage-test", target, fsType: "tmpfs", options: ["size=1m", "mode=0700"] });
    scope.defer("unmount", async () => {
      if (await isMountPoint(target)) await umount(target);
    });
    const entry = findMount(await readMountinfo(), target);
    expect(entry).toMatchObject({ fsType: "tmpfs", source: "stowage-test" });
    await umount(target);
    expect(await isMountPoint(target)).toBe(false);
  });

  it("bind-mounts read-only", async () => {
    const dir = await scope.tempDir();
    const source = path.join(dir, "src");
    const target = path.join(dir, "dst");
    await mkdir(source);
    await mkdir(target);
    await writeFile(path.join(source, "f"), "x");
    await mount({ source, target, options: ["bind", "ro"] });
    scope.defer("unmount", () => umount(target));
    await expect(writeFile(path.join(target, "g"), "y")).rejects.toMatchObject({ code: "EROFS" });
  });

  it("names the source and target when mounting fails", async () => {
    const target = await scope.tempDir();
    const failure = await mount({ source: "/dev/stowage-missing", target, fsType: "ext4" }).catch(
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(MountError);
    expect((failure as MountError).message).toContain(`cannot mount /dev/stowage-missing on ${target}`);
  });
});
