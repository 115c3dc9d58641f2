import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { type TestScope, useScope } from "../support/scope.js";
import { mountTmpfs } from "../support/tmpfs.js";
import { config, describeBytes, type Entry, expectSameTree, sha256, snapshotter, start } from "./harness.js";

/**
 * A volume of `files` files of 4 KiB in directories of 500 and two of 4 MiB, contents depending on
 * `tag`, made by Python: enough files (1,000 or more) that restore writes them with worker threads.
 */
async function makeVolume(volume: string, files: number, tag: string): Promise<void> {
  const script = `
import os, sys
root, count, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(count):
    d = os.path.join(root, "d%d" % (i // 500))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "%s-%d" % (tag, i)), "wb") as f:
        f.write(((tag + str(i)) * 1024).encode()[:4096])
for name in ("big-1", "big-2"):
    with open(os.path.join(root, tag + name), "wb") as f:
        f.write(os.urandom(4 * 1024 * 1024))
`;
  await run("python3", ["-c", script, volume, String(files), tag]);
}

/** Replace the volume's contents by the old tree again (a copy kept aside). */
async function resetTo(volume: string, old: string): Promise<void> {
  await rm(volume, { recursive: true, force: true });
  await run("cp", ["-a", old, volume]);
}

const withThreads = (threads: number) => ({ ...process.env, STOWAGE_RESTORE_THREADS: String(threads) });

describe("snapshotter restore with worker threads", () => {
  const scope = useScope();

  /** A backup of a new tree, and an old tree (kept aside) that the volume holds before each restore. */
  async function setup(scope: TestScope, files = 1200) {
    const dir = await scope.tempDir("stowage-snap-par-");
    const volume = path.join(dir, "volume");
    const old = path.join(dir, "old");
    await makeVolume(volume, files, "new");
    const expected = await describeBytes(volume);
    const archive = path.join(dir, "backup.tar");
    const cfg = await config(dir, [volume]);
    const saved = await snapshotter(["backup", "--config", cfg, "--archive", archive]);
    expect(saved.status, saved.stderr).toBe(0);
    await makeVolume(old, files / 2, "old");
    const previous = await describeBytes(old);
    return { dir, volume, old, archive, cfg, expected, previous };
  }

  it("writes exactly what the main thread writes: hard links to files still being written, a file twice, a directory replaced by a file, xattrs, a default ACL", async () => {
    const dir = await scope.tempDir("stowage-snap-par-");
    const volume = path.join(dir, "vol");
    const id = sha256(volume);
    // Python's tarfile, member by member: cases a tree on disk cannot produce, among 1,500 files.
    const script = `
import io, os, subprocess, sys, tarfile
archive, prefix, vid, target = sys.argv[1:5]
probe = os.path.join(os.path.dirname(archive), "probe")
os.mkdir(probe)
subprocess.run(["setfacl", "-d", "-m", "g:2345:rx", probe], check=True)
acl = os.getxattr(probe, "system.posix_acl_default")
def add(tar, name, data=b"", xattrs=None, **kw):
    info = tarfile.TarInfo(prefix + "/" + vid + name); info.size = len(data); info.mtime = 1700000000
    for k, v in kw.items(): setattr(info, k, v)
    if xattrs: info.pax_headers = {"SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()}
    tar.addfile(info, io.BytesIO(data) if data else None)
with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as tar:
    add(tar, "", type=tarfile.DIRTYPE, mode=0o755)
    add(tar, "/acl", type=tarfile.DIRTYPE, mode=0o2775, xattrs={"system.posix_acl_default": acl})
    for i in range(1500):
        add(tar, "/acl/f%d" % i, b"x%d" % i * 300, mode=0o640, uid=1000 + i % 3, gid=2000)
        if i % 100 == 7:
            add(tar, "/acl/link%d" % i, type=tarfile.LNKTYPE, linkname=prefix + "/" + vid + "/acl/f%d" % i)
        if i % 250 == 9:
            add(tar, "/acl/f%d" % i, b"second copy %d" % i, mode=0o600, xattrs={"user.which": b"second"})
    add(tar, "/tagged", b"t", xattrs={"user.k": b"\\x00\\xffvalue"})
    add(tar, "/x", type=tarfile.DIRTYPE, mode=0o755)
    add(tar, "/x/inside", b"gone later")
    add(tar, "/x", b"x is a file now", mode=0o644)
    add(tar, "/s", b"will be a symlink")
    add(tar, "/s", type=tarfile.SYMTYPE, linkname="tagged")
    index = ("- id: %s\\n  type: dir\\n  target: %s\\n" % (vid, target)).encode()
    info = tarfile.TarInfo(prefix + "/volumes-data.yml"); info.size = len(index)
    tar.addfile(info, io.BytesIO(index))
`;
    const archive = path.join(dir, "crafted.tar");
    await run("python3", ["-c", script, archive, "p", id, volume]);
    const cfg = await config(dir, [volume]);
    const restoreWith = async (threads: number) => {
      await rm(volume, { recursive: true, force: true });
      const result = await snapshotter(["restore", "--config", cfg, "--archive", archive], {
        env: withThreads(threads),
      });
      expect(result.status, result.stderr).toBe(0);
      return describeBytes(volume);
    };
    const here = await restoreWith(0);
    const threaded = await restoreWith(2);
    expectSameTree(threaded, here);
    const hex = (name: string) => Buffer.from(name).toString("hex");
    const entry = (name: string) => threaded.find((e) => e.path === hex(name)) as Entry;
    expect(await readFile(path.join(volume, "x"), "utf8")).toBe("x is a file now");
    expect(entry("s").type).toBe("l");
    expect(await readFile(path.join(volume, "acl", "f259"), "utf8")).toBe("second copy 259");
    expect(entry("acl/f259")).toMatchObject({ mode: "0o600" });
    expect((await stat(path.join(volume, "acl", "link107"))).ino).toBe(
      (await stat(path.join(volume, "acl", "f107"))).ino,
    );
    expect(entry("acl/f5")).toMatchObject({ mode: "0o640", uid: 1002, gid: 2000 });
    // The directory's default ACL comes after its files: none of them inherited it.
    const acls = (await run("getfacl", ["-R", "--absolute-names", "--skip-base", path.join(volume, "acl")]))
      .stdout;
    expect(acls).toContain(`# file: ${path.join(volume, "acl")}\n`);
    expect(acls).not.toContain(`# file: ${path.join(volume, "acl", "f")}`);
    expect(JSON.stringify(entry("tagged"))).toContain(Buffer.from("\0\xffvalue", "latin1").toString("hex"));
  });

  it("stopped by SIGTERM at any moment: the new tree complete (exit 0, or stopped after its restored line), else 143 naming the incomplete volume (or the old tree untouched)", {
    timeout: 600_000,
  }, async () => {
    const { volume, old, archive, cfg, expected, previous } = await setup(scope, 3000);
    // How long a whole restore takes here, to stop the next ones at fractions of it.
    await resetTo(volume, old);
    const began = Date.now();
    const whole = await snapshotter(["restore", "--config", cfg, "--archive", archive]);
    expect(whole.status, whole.stderr).toBe(0);
    expectSameTree(await describeBytes(volume), expected);
    const took = Date.now() - began;

    /** One restore stopped by SIGTERM after `fraction` of `took`: which of the allowed outcomes. */
    const stopAt = async (fraction: number): Promise<string> => {
      await resetTo(volume, old);
      const restoring = start(["restore", "--config", cfg, "--archive", archive]);
      await new Promise((resolve) => setTimeout(resolve, took * fraction));
      restoring.kill("SIGTERM");
      const result = await restoring.output;
      const now = await describeBytes(volume);
      if (result.status === 0) {
        expectSameTree(now, expected);
        return "complete";
      }
      if (result.stdout.includes("restored")) {
        // The signal came after the volume was written and said so: a stop is still a stop
        // (143 at a safe point, or the signal's default action once the handlers are gone at
        // the very end), and what the line says is true.
        expect(result.status === 143 || result.signal === "SIGTERM", result.stderr).toBe(true);
        expect(result.stderr).not.toContain("is incomplete");
        expectSameTree(now, expected);
        return "complete, then stopped";
      }
      if (result.signal === "SIGTERM") {
        // Still starting: the signal's default action ended it before anything was read.
        expectSameTree(now, previous);
        return "not started";
      }
      expect(result.status, result.stderr).toBe(143);
      expect(result.stderr).toContain("stopped by SIGTERM");
      if (result.stderr.includes(`volume ${volume} is incomplete`)) return "incomplete, said so";
      // Stopped before the volume was touched.
      expectSameTree(now, previous);
      return "untouched";
    };

    const outcomes: string[] = [];
    for (const fraction of [0.05, 0.3, 0.55, 0.8]) outcomes.push(await stopAt(fraction));
    // Under load a whole restore's time is a rough guide: until one stop has landed in the middle
    // of the writing, try more moments around the middle.
    for (const fraction of [0.45, 0.6, 0.4, 0.65, 0.5, 0.7]) {
      if (outcomes.includes("incomplete, said so")) break;
      outcomes.push(await stopAt(fraction));
    }
    expect(outcomes).toContain("incomplete, said so");
    // Once the restore runs to its end, the tree is exactly the backup.
    const again = await snapshotter(["restore", "--config", cfg, "--archive", archive]);
    expect(again.status, again.stderr).toBe(0);
    expectSameTree(await describeBytes(volume), expected);
  });

  it("killed with -9 at any moment: never a success; the next restore makes the tree exactly", {
    timeout: 600_000,
  }, async () => {
    const { volume, old, archive, cfg, expected } = await setup(scope);
    await resetTo(volume, old);
    const began = Date.now();
    expect((await snapshotter(["restore", "--config", cfg, "--archive", archive])).status).toBe(0);
    const took = Date.now() - began;

    /** One restore killed after `fraction` of `took`: true when the kill left the tree unfinished. */
    const killAt = async (fraction: number): Promise<boolean> => {
      await resetTo(volume, old);
      const restoring = start(["restore", "--config", cfg, "--archive", archive]);
      await new Promise((resolve) => setTimeout(resolve, took * fraction));
      restoring.kill("SIGKILL");
      const result = await restoring.output;
      if (result.status === 0 || result.stdout.includes("restored")) {
        // Done before the kill (or killed after saying so): the tree is the backup.
        expectSameTree(await describeBytes(volume), expected);
        return false;
      }
      expect(result.signal).toBe("SIGKILL");
      const now = JSON.stringify(await describeBytes(volume));
      // Nothing keeps writing after the process is gone: the tree stays as the kill left it.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(JSON.stringify(await describeBytes(volume))).toBe(now);
      const again = await snapshotter(["restore", "--config", cfg, "--archive", archive]);
      expect(again.status, again.stderr).toBe(0);
      expectSameTree(await describeBytes(volume), expected);
      return now !== JSON.stringify(expected);
    };

    let killedWhileWriting = 0;
    for (const fraction of [0.2, 0.5, 0.8]) if (await killAt(fraction)) killedWhileWriting++;
    // Under load a whole restore's time is a rough guide: try more moments around the middle.
    for (const fraction of [0.45, 0.6, 0.4, 0.65]) {
      if (killedWhileWriting > 0) break;
      if (await killAt(fraction)) killedWhileWriting++;
    }
    expect(killedWhileWriting).toBeGreaterThan(0);
  });

  it.each([2, 0])(
    "onto a disk that fills in the middle (threads: %i): fails naming ENOSPC and the incomplete volume",
    async (threads) => {
      const dir = await scope.tempDir("stowage-snap-par-full-");
      const volume = path.join(dir, "volume");
      await makeVolume(volume, 3000, "new");
      const archive = path.join(dir, "backup.tar");
      const cfg = await config(dir, [volume]);
      expect((await snapshotter(["backup", "--config", cfg, "--archive", archive])).status).toBe(0);
      // 24 MiB of data onto a tmpfs of 16 MiB, mounted where the volume is.
      await mountTmpfs(scope, volume, { mountOptions: ["size=16m"] });
      await writeFile(path.join(volume, "old"), "old contents\n");
      const result = await snapshotter(["restore", "--config", cfg, "--archive", archive], {
        env: withThreads(threads),
      });
      expect(result.status, result.stderr).toBe(1);
      expect(result.stderr).toMatch(/ENOSPC|no space left on device/);
      expect(result.stderr).toContain(`volume ${volume} is incomplete`);
      expect(result.stderr).not.toMatch(/internal error/);
      expect(result.stdout).not.toContain("restored");
    },
  );
});

describe("snapshotter restore threads setting", () => {
  const scope = useScope();

  it("refuses a bad STOWAGE_RESTORE_THREADS before touching anything", async () => {
    const dir = await scope.tempDir("stowage-snap-par-");
    const volume = path.join(dir, "volume");
    await mkdir(volume);
    await writeFile(path.join(volume, "keep"), "kept\n");
    const cfg = await config(dir, [volume]);
    const archive = path.join(dir, "backup.tar");
    expect((await snapshotter(["backup", "--config", cfg, "--archive", archive])).status).toBe(0);
    const result = await snapshotter(["restore", "--config", cfg, "--archive", archive], {
      env: { ...process.env, STOWAGE_RESTORE_THREADS: "many" },
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(
      "STOWAGE_RESTORE_THREADS=many: expected a number of threads from 0 to 64",
    );
    expect(await readFile(path.join(volume, "keep"), "utf8")).toBe("kept\n");
  });
});

/** Every member of an archive (index left out: its mtime is the backup's), headers and data hashed. */
async function members(archive: string): Promise<string[]> {
  const script = `
import hashlib, sys, tarfile
with tarfile.open(sys.argv[1]) as tar:
    for m in tar:
        if m.name.endswith("/volumes-data.yml"): continue
        data = tar.extractfile(m).read() if m.isfile() else b""
        print(m.name, m.type, m.mode, m.uid, m.gid, m.size, m.mtime, m.linkname, sorted(m.pax_headers.items()), hashlib.sha256(data).hexdigest())
`;
  return (await run("python3", ["-c", script, archive])).stdout.trim().split("\n");
}

describe("snapshotter backup with the reader thread (STOWAGE_BACKUP_THREADS=1)", () => {
  const scope = useScope();

  it("writes the same members as without it: small and big files, xattrs, hard links, symlinks", async () => {
    const dir = await scope.tempDir("stowage-snap-read-");
    const volume = path.join(dir, "volume");
    await makeVolume(volume, 1500, "new");
    await run("setfattr", ["-n", "user.k", "-v", "v", path.join(volume, "d1", "new-600")]);
    await run("ln", [path.join(volume, "d0", "new-3"), path.join(volume, "d2", "hard")]);
    await run("ln", ["-s", "d0/new-3", path.join(volume, "link")]);
    const cfg = await config(dir, [volume]);
    const backup = async (threads: number) => {
      const archive = path.join(dir, `backup-${threads}.tar`);
      const result = await snapshotter(["backup", "--config", cfg, "--archive", archive], {
        env: { ...process.env, STOWAGE_BACKUP_THREADS: String(threads) },
      });
      expect(result.status, result.stderr).toBe(0);
      return members(archive);
    };
    const here = await backup(0);
    expect(here.length).toBeGreaterThan(1500);
    expect(await backup(1)).toEqual(here);
  });

  it("a big file that grows while it is copied is reported, the archive valid (exit 1)", async () => {
    const dir = await scope.tempDir("stowage-snap-read-");
    const volume = path.join(dir, "volume");
    await makeVolume(volume, 1200, "new");
    await run("truncate", ["-s", String(1024 ** 3), path.join(volume, "a-big")]);
    const archive = path.join(dir, "backup.tar");
    const backup = start(["backup", "--config", await config(dir, [volume]), "--archive", archive], {
      ...process.env,
      STOWAGE_BACKUP_THREADS: "1",
    });
    while (
      (await stat(archive).then(
        (s) => s.size,
        () => 0,
      )) <
      64 * 1024 * 1024
    )
      await new Promise((resolve) => setTimeout(resolve, 5));
    await run("fallocate", ["-o", String(1024 ** 3), "-l", "1M", path.join(volume, "a-big")]);
    const result = await backup.output;
    expect(result.status, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/a-big: grew by \d+ bytes while being read/);
    expect((await run("tar", ["-tvf", archive])).stdout).toMatch(/ 1073741824 .*\/a-big\n/);
  });

  it("refuses a bad STOWAGE_BACKUP_THREADS", async () => {
    const dir = await scope.tempDir("stowage-snap-read-");
    const volume = path.join(dir, "volume");
    await mkdir(volume);
    const result = await snapshotter(
      ["backup", "--config", await config(dir, [volume]), "--archive", path.join(dir, "a.tar")],
      { env: { ...process.env, STOWAGE_BACKUP_THREADS: "2" } },
    );
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("STOWAGE_BACKUP_THREADS=2: expected a number of threads from 0 to 1");
  });
});
