import { mkdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { createLoopBtrfs } from "../support/btrfs.js";
import { useScope } from "../support/scope.js";
import { mountTmpfs } from "../support/tmpfs.js";
import { escapeOf, journals, PODMAN_RUN_DIRS, podmanStandIns, runStatecraft, SCRIPTS } from "./harness.js";

const LIB = path.resolve(import.meta.dirname, "../../lib/statecraft");

describe("bundled state scripts and mount helpers (real mounts)", () => {
  const scope = useScope();

  async function setup() {
    const dir = await scope.tempDir("stowage-sc-");
    const pathsDir = path.join(dir, "paths.d");
    await mkdir(pathsDir);
    const add = async (script: string, name: string) =>
      symlink(path.join(SCRIPTS, script), path.join(pathsDir, `${name}.state.sh`));
    return { dir, pathsDir, add, env: { STATECRAFT_STATE_DIR: path.join(dir, "state") } };
  }

  it("mountinfo and is_mountpoint find mount points with spaces (the original's bug)", async () => {
    const target = path.join(await scope.tempDir(), "with space\tand tab");
    await mountTmpfs(scope, target);
    const result = await run(
      "bash",
      [
        "-c",
        'source "$LIB_DIR/include/statecraft.sh"; mountinfo "$1" fstype; mountinfo "$1" source; mountinfo "$1" target; is_mountpoint "$1" && echo yes; is_mountpoint "$1/x" || echo no',
        "t",
        target,
      ],
      {
        env: { ...process.env, LIB_DIR: LIB },
      },
    );
    expect(result.stdout).toBe(`tmpfs\nstowage-test\n${target}\nyes\nno\n`);
  });

  it("tar-xz.sh archives a live path; bind.sh mounts a source at another target (TARGET+SOURCE)", async () => {
    const { dir, pathsDir, add, env } = await setup();
    const data = path.join(dir, "data");
    await mkdir(data);
    await writeFile(path.join(data, "a.txt"), "archived\n");
    await add("tar-xz.sh", await escapeOf(data));
    await add("bind.sh", `${await escapeOf("/view/data")}+${await escapeOf(data)}`);
    const result = await runStatecraft(
      ["-q", "-p", pathsDir, "--", "sh", "-c", `tar -tJf .${data}.tar.xz && cat view/data/a.txt`],
      env,
    );
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("./\n./a.txt\narchived\n");
  });

  // A real LVM snapshot needs device-mapper, which the test machines' kernel lacks (no dm-mod, no
  // modules to load); what can run for real is lvs against a mount that is not a logical volume.
  it("lvm.sh refuses a mount point that is not an LVM logical volume and leaves nothing behind", async () => {
    const { dir, pathsDir, add, env } = await setup();
    const mounted = path.join(dir, "not-lvm");
    await mountTmpfs(scope, mounted);
    await add("bind.sh", await escapeOf(dir));
    await add("lvm.sh", await escapeOf(mounted));
    const result = await runStatecraft(["-q", "-p", pathsDir, "--", "true"], env);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(`'stowage-test' is not an LVM logical volume`);
    expect(await journals(env.STATECRAFT_STATE_DIR)).toEqual([]);
  });

  it("disk-info.sh describes the paths that are mount points", async () => {
    const { dir, pathsDir, add, env } = await setup();
    const disk = path.join(dir, "disk");
    await mountTmpfs(scope, disk, { source: "stowage-disk" });
    await add("bind.sh", await escapeOf(disk));
    await add("disk-info.sh", await escapeOf("/disks.json"));
    const result = await runStatecraft(["-q", "-p", pathsDir, "--", "jq", "-c", ".", "disks.json"], env);
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([
      { partition: "stowage-disk", filesystem: "tmpfs", mountpoint: disk },
    ]);
  });

  it("external-drive.sh waits for the labelled drive to be mounted, then binds a path on it read-only", async () => {
    const { dir, pathsDir, add, env } = await setup();
    const label = `stw${Date.now() % 1_000_000}`;
    const drive = await createLoopBtrfs(scope, { label });
    await mkdir(path.join(drive.mountPoint, "backups"));
    await writeFile(path.join(drive.mountPoint, "backups", "note"), "on the drive\n");
    await run("umount", [drive.mountPoint]);
    // Where the drive will appear: a shared mount, as systemd makes every mount on a normal host,
    // so that a mount made after the run started propagates into the run's namespace.
    const media = path.join(dir, "media");
    const mountPoint = path.join(media, "drive");
    await mkdir(mountPoint, { recursive: true });
    await run("mount", ["--bind", media, media]);
    await run("mount", ["--make-rshared", media]);
    scope.defer("unmount media", () => run("umount", ["--recursive", media]));
    const onDrive = path.join(mountPoint, "backups");
    await add("external-drive.sh", `${await escapeOf("/drive")}+${await escapeOf(onDrive)}`);
    const pending = runStatecraft(["-q", "-p", pathsDir, "--", "sh", "-c", "cat drive/note; touch drive/x"], {
      ...env,
      STATECRAFT_DRIVE_LABEL: label,
      STATECRAFT_DRIVE_TIMEOUT: "20",
    });
    // The drive shows up a little later, as a plugged-in disk would.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await run("mount", [drive.devices[0] ?? "", mountPoint]);
    const result = await pending;
    expect(result.stdout).toBe("on the drive\n");
    expect(result.stderr).toContain("Read-only file system");
    expect(result.status).toBe(1);
    expect(result.stderr).not.toContain(dir);
  });

  it("podman-containers.sh lists the containers of root and of every user with Podman run dirs", async () => {
    const { dir, pathsDir, add, env } = await setup();
    const bin = await podmanStandIns(dir, '[{\\"Names\\":[\\"$(id -un)-web\\"]}]');
    await add("podman-containers.sh", await escapeOf("/podman-containers.json"));
    const result = await runStatecraft(
      ["-q", "-p", pathsDir, "--", "jq", "-c", ".", "podman-containers.json"],
      { ...env, PATH: `${bin}:${process.env.PATH}` },
      undefined,
      PODMAN_RUN_DIRS,
    );
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([
      { root: [{ Names: ["root-web"] }] },
      { root: [{ Names: ["root-web"] }] },
    ]);
  });

  it("fcos-release.sh takes the stream from the system instead of assuming 'stable'", async () => {
    const { dir, pathsDir, add, env } = await setup();
    const bin = path.join(dir, "bin");
    await mkdir(bin);
    const status = {
      deployments: [{ booted: true, "base-commit-meta": { "fedora-coreos.stream": "testing" } }],
    };
    await writeFile(path.join(bin, "rpm-ostree"), `#!/bin/sh\necho '${JSON.stringify(status)}'\n`, {
      mode: 0o755,
    });
    await add("fcos-release.sh", await escapeOf("/fcos-release.json"));
    const result = await runStatecraft(
      ["-q", "-p", pathsDir, "--", "jq", "-c", "{stream, artifacts, deployments}", "fcos-release.json"],
      {
        ...env,
        PATH: `${bin}:${process.env.PATH}`,
      },
    );
    expect(result.status, result.stderr).toBe(0);
    const info = JSON.parse(result.stdout);
    expect(info.stream).toBe("testing");
    expect(info.artifacts).toContain("/streams/testing/builds/");
    expect(info.deployments).toEqual(status.deployments);
  });
});
