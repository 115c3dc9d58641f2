import { spawn } from "node:child_process";
import { once } from "node:events";
import { appendFile, mkdir, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { ensureTestImage, TEST_LABEL } from "../support/docker.js";
import { gnuTarExtractAll } from "../support/gnu-tar.js";
import { type TestScope, uniqueId, useScope } from "../support/scope.js";
import {
  CLI,
  ddArchive,
  describeTree,
  fidelityTree,
  fileHash,
  sameTree,
  sha256,
  snapshotter,
} from "./harness.js";

/** Seed 001's example: test-volumes/{volume1/file.txt, volume2.txt, volume3/file.txt}. */
async function seedVolumes(dir: string): Promise<{ config: string; volumes: string[] }> {
  const base = path.join(dir, "test-volumes");
  await mkdir(path.join(base, "volume1"), { recursive: true });
  await mkdir(path.join(base, "volume3"), { recursive: true });
  await writeFile(path.join(base, "volume1", "file.txt"), "volume one\n");
  await writeFile(path.join(base, "volume2.txt"), "volume two\n");
  await writeFile(path.join(base, "volume3", "file.txt"), "volume three\n");
  const volumes = ["volume1", "volume2.txt", "volume3"].map((name) => path.join(base, name));
  const config = path.join(dir, "config.yml");
  await writeFile(
    config,
    `prefix: "volumes/busy_lewin"\nvolumes:\n${volumes.map((v) => `  - ${v}\n`).join("")}`,
  );
  return { config, volumes };
}

async function tarList(archive: string): Promise<string[]> {
  return (await run("tar", ["-tf", archive])).stdout.trim().split("\n");
}

describe("snapshotter archives (real files, GNU tar)", () => {
  const scope = useScope();

  it("runs the seed's busy_lewin example: dd-initialised archive, backup, GNU tar lists it, restore", async () => {
    const dir = await scope.tempDir("stowage-snap-");
    const { config, volumes } = await seedVolumes(dir);
    const archive = path.join(dir, "backup.tar");
    await ddArchive(archive);
    const saved = await snapshotter(["backup", "--config", config, "--archive", archive]);
    expect(saved.status, saved.stderr).toBe(0);
    expect(saved.stdout).toContain("3 volume(s) under volumes/busy_lewin appended to");
    const ids = volumes.map((v) => sha256(v));
    expect(await tarList(archive)).toEqual([
      `volumes/busy_lewin/${ids[0]}/`,
      `volumes/busy_lewin/${ids[0]}/file.txt`,
      `volumes/busy_lewin/${ids[1]}`,
      `volumes/busy_lewin/${ids[2]}/`,
      `volumes/busy_lewin/${ids[2]}/file.txt`,
      "volumes/busy_lewin/volumes-data.yml",
    ]);
    const index = (await run("tar", ["-xOf", archive, "volumes/busy_lewin/volumes-data.yml"])).stdout;
    expect(index).toBe(
      volumes
        .map((v, i) => `- id: ${ids[i]}\n  type: ${v.endsWith(".txt") ? "file" : "dir"}\n  target: ${v}\n`)
        .join(""),
    );
    const before = await describeTree(path.join(dir, "test-volumes"));

    await writeFile(path.join(volumes[0] as string, "file.txt"), "changed\n");
    await writeFile(path.join(volumes[0] as string, "not-in-backup"), "removed by restore\n");
    await rm(path.join(volumes[2] as string, "file.txt"));
    await writeFile(volumes[1] as string, "changed too\n");
    const fileInode = (await stat(volumes[1] as string)).ino;
    const restored = await snapshotter(["restore", "--config", config, "--archive", archive]);
    expect(restored.status, restored.stderr).toBe(0);
    expect(restored.stdout.trim().split("\n")).toHaveLength(3);
    expect(sameTree(await describeTree(path.join(dir, "test-volumes")), before)).toEqual(before);
    // A file volume is rewritten in place: a bind mount of it keeps seeing the new content.
    expect((await stat(volumes[1] as string)).ino).toBe(fileInode);
  });

  it("keeps every kind of file exactly: owners, modes, ns mtimes, xattrs, ACLs, symlinks, hard links, FIFOs, devices", async () => {
    const dir = await scope.tempDir("stowage-snap-");
    const volume = path.join(dir, "vol");
    await mkdir(volume);
    await fidelityTree(volume);
    const before = await describeTree(volume);
    const archive = path.join(dir, "a.tar");
    expect((await snapshotter(["init", archive])).status).toBe(0);
    const saved = await snapshotter(["backup", "--archive", archive, "--container-less-is-not-a-flag"]);
    expect(saved.status).toBe(2);
    const config = path.join(dir, "config.yml");
    await writeFile(config, `prefix: full\nvolumes: [${volume}]\n`);
    expect((await snapshotter(["backup", "--config", config, "--archive", archive])).status).toBe(0);
    await rm(volume, { recursive: true });
    const restored = await snapshotter(["restore", "--config", config, "--archive", archive]);
    expect(restored.status, restored.stderr).toBe(0);
    expect(sameTree(await describeTree(volume), before)).toEqual(before);
    // GNU tar reads every entry too, with the same content.
    const extracted = path.join(dir, "gnu");
    await gnuTarExtractAll(archive, extracted);
    const gnuVolume = path.join(extracted, "full", sha256(volume));
    expect(await describeTree(gnuVolume)).toEqual(before);
  });

  it("appends two containers' prefixes to one archive; GNU tar lists every entry once and extracts it", async () => {
    const dir = await scope.tempDir("stowage-snap-");
    const archive = path.join(dir, "backup.tar");
    await ddArchive(archive);
    const made: string[] = [];
    for (const name of ["alpha", "beta"]) {
      const volume = path.join(dir, name);
      await mkdir(volume);
      await writeFile(path.join(volume, "data"), `${name}\n`);
      const config = path.join(dir, `${name}.yml`);
      await writeFile(config, `prefix: volumes/${name}\nvolumes:\n  - ${volume}\n`);
      const result = await snapshotter(["backup", "--config", config, "--archive", archive]);
      expect(result.status, result.stderr).toBe(0);
      made.push(`volumes/${name}/${sha256(volume)}/data`);
    }
    const listed = await tarList(archive);
    expect(listed).toHaveLength(6);
    expect(new Set(listed).size).toBe(6);
    const out = path.join(dir, "out");
    await mkdir(out);
    await run("tar", ["-xf", archive, "-C", out]);
    for (const member of made)
      expect(await readFile(path.join(out, member), "utf8")).toMatch(/^(alpha|beta)\n$/);
    const listing = JSON.parse((await snapshotter(["list", "--archive", archive, "--json"])).stdout);
    expect(listing.copies.map((c: { prefix: string; state: string }) => [c.prefix, c.state])).toEqual([
      ["volumes/alpha", "current"],
      ["volumes/beta", "current"],
    ]);
  });

  it("appends to an archive GNU tar made (padded to 10 KiB records), finding its real end", async () => {
    const dir = await scope.tempDir("stowage-snap-");
    await mkdir(path.join(dir, "existing"));
    await writeFile(path.join(dir, "existing", "notes.txt"), "made by GNU tar\n");
    const archive = path.join(dir, "gnu.tar");
    await run("tar", ["-cf", archive, "-C", dir, "existing"]);
    expect((await stat(archive)).size).toBe(10240);
    const { config } = await seedVolumes(dir);
    const result = await snapshotter(["backup", "--config", config, "--archive", archive]);
    expect(result.status, result.stderr).toBe(0);
    const listed = await tarList(archive);
    expect(listed.slice(0, 2)).toEqual(["existing/", "existing/notes.txt"]);
    expect(listed).toHaveLength(8);
    expect(listed.at(-1)).toBe("volumes/busy_lewin/volumes-data.yml");
    const restored = await snapshotter(["restore", "--config", config, "--archive", archive]);
    expect(restored.status, restored.stderr).toBe(0);
    const list = await snapshotter(["list", "--archive", archive]);
    expect(list.stdout).toContain("2 other entries (not snapshotter's; kept)");
  });

  it("replaces an existing prefix in place of appending a second copy; --append-only keeps both", async () => {
    const dir = await scope.tempDir("stowage-snap-");
    const { config, volumes } = await seedVolumes(dir);
    const archive = path.join(dir, "backup.tar");
    await ddArchive(archive);
    const other = path.join(dir, "other.yml");
    await mkdir(path.join(dir, "other"));
    await writeFile(path.join(dir, "other", "x"), "other prefix\n");
    await writeFile(other, `prefix: volumes/other\nvolumes: [${path.join(dir, "other")}]\n`);
    expect((await snapshotter(["backup", "--config", config, "--archive", archive])).status).toBe(0);
    expect((await snapshotter(["backup", "--config", other, "--archive", archive])).status).toBe(0);
    await writeFile(path.join(volumes[0] as string, "file.txt"), "second version\n");
    const second = await snapshotter(["backup", "--config", config, "--archive", archive]);
    expect(second.stdout).toContain("replaced the previous copy");
    const listed = await tarList(archive);
    expect(listed.filter((name) => name.endsWith("volumes-data.yml"))).toHaveLength(2);
    expect(listed.at(-1)).toBe("volumes/busy_lewin/volumes-data.yml");
    await writeFile(path.join(volumes[0] as string, "file.txt"), "third version\n");
    const kept = await snapshotter(["backup", "--append-only", "--config", config, "--archive", archive]);
    expect(kept.stdout).toContain("appended");
    const list = await snapshotter(["list", "--archive", archive]);
    expect(list.stdout.match(/superseded/g)).toHaveLength(1);
    await writeFile(path.join(volumes[0] as string, "file.txt"), "garbage\n");
    expect((await snapshotter(["restore", "--config", config, "--archive", archive])).status).toBe(0);
    expect(await readFile(path.join(volumes[0] as string, "file.txt"), "utf8")).toBe("third version\n");
    const compact = await snapshotter(["compact", "--archive", archive]);
    expect(compact.stdout).toContain("dropped 1 superseded copy(ies)");
    expect((await tarList(archive)).filter((name) => name.endsWith("volumes-data.yml"))).toHaveLength(2);
  });

  it("keeps a volume's own files named volumes-data.yml (the index's name) through replace, list, restore and compact", async () => {
    const dir = await scope.tempDir("stowage-snap-");
    const volume = path.join(dir, "app");
    await mkdir(path.join(volume, "sub"), { recursive: true });
    await writeFile(path.join(volume, "volumes-data.yml"), "the app's own file\n");
    await writeFile(path.join(volume, "sub", "volumes-data.yml"), "deeper\n");
    const config = path.join(dir, "c.yml");
    await writeFile(config, `prefix: p\nvolumes: [${volume}]\n`);
    const archive = path.join(dir, "backup.tar");
    for (let run = 0; run < 2; run++)
      expect((await snapshotter(["backup", "--config", config, "--archive", archive])).status).toBe(0);
    const list = await snapshotter(["list", "--archive", archive]);
    expect(list.stdout).toContain("4 entries");
    expect(list.stdout).not.toContain("!");
    await rm(volume, { recursive: true });
    await mkdir(volume);
    const restored = await snapshotter(["restore", "--config", config, "--archive", archive]);
    expect(restored.status, restored.stderr).toBe(0);
    expect(await readFile(path.join(volume, "volumes-data.yml"), "utf8")).toBe("the app's own file\n");
    expect(await readFile(path.join(volume, "sub", "volumes-data.yml"), "utf8")).toBe("deeper\n");
    const compact = await snapshotter(["compact", "--archive", archive]);
    expect(compact.stdout).toContain("dropped 0 superseded copy(ies), 0 entries");
  });

  it("restores exactly while a compact renames a rewritten archive over the one being read", async () => {
    const dir = await scope.tempDir("stowage-snap-");
    const volume = path.join(dir, "app");
    await mkdir(volume);
    await run("dd", ["if=/dev/urandom", `of=${path.join(volume, "big")}`, "bs=1M", "count=150"]);
    await run("python3", [
      "-c",
      "import os,sys\nfor i in range(10000):\n open(os.path.join(sys.argv[1], 'f%05d' % i), 'w').write(str(i) * 50)",
      volume,
    ]);
    const config = path.join(dir, "c.yml");
    await writeFile(config, `prefix: p\nvolumes: [${volume}]\n`);
    const archive = path.join(dir, "backup.tar");
    expect((await snapshotter(["backup", "--config", config, "--archive", archive])).status).toBe(0);
    await writeFile(path.join(volume, "f00000"), "second copy\n");
    const appended = await snapshotter(["backup", "--append-only", "--config", config, "--archive", archive]);
    expect(appended.status).toBe(0);
    const expected = await describeTree(volume);
    await rm(volume, { recursive: true });
    await mkdir(volume);

    const child = spawn(process.execPath, [CLI, "restore", "--config", config, "--archive", archive], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const exited = once(child, "exit");
    // Once restore is writing files, the compact drops the first copy and renames its archive over.
    while ((await readdir(volume)).length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const compact = await snapshotter(["compact", "--archive", archive]);
    expect(compact.stdout).toContain("dropped 1 superseded copy(ies)");
    const [code] = await exited;
    expect(code, stderr).toBe(0);
    expect(sameTree(await describeTree(volume), expected)).toEqual(expected);
  });

  it.each(["replace", "append"])(
    "kill -9 during a %s leaves the previous archive intact and restorable",
    async (kind) => {
      const dir = await scope.tempDir("stowage-snap-");
      const { config, volumes } = await seedVolumes(dir);
      const archive = path.join(dir, "backup.tar");
      await ddArchive(archive);
      expect((await snapshotter(["backup", "--config", config, "--archive", archive])).status).toBe(0);
      const before = await fileHash(archive);
      // A large volume makes the backup take long enough to be killed in the middle.
      const big = path.join(dir, "big");
      await mkdir(big);
      await run("dd", ["if=/dev/urandom", `of=${path.join(big, "blob")}`, "bs=1M", "count=400"]);
      const bigConfig = path.join(dir, "big.yml");
      const prefix = kind === "replace" ? "volumes/busy_lewin" : "volumes/big";
      await writeFile(bigConfig, `prefix: ${prefix}\nvolumes: [${big}]\n`);
      const child = spawn(process.execPath, [CLI, "backup", "--config", bigConfig, "--archive", archive], {
        stdio: "ignore",
      });
      const exited = once(child, "exit");
      // Wait until it is writing (a temp file beside the archive, or the archive growing), then kill.
      for (let waited = 0; waited < 200; waited++) {
        const names = await readdir(dir);
        const growing = (await stat(archive)).size > 1_000_000;
        if (names.some((n) => n.startsWith(".backup.tar.tmp-")) || growing) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      child.kill("SIGKILL");
      await exited;
      expect((await tarList(archive)).at(-1)).toBe("volumes/busy_lewin/volumes-data.yml");
      if (kind === "replace") expect(await fileHash(archive)).toBe(before);
      await writeFile(path.join(volumes[0] as string, "file.txt"), "lost\n");
      const restored = await snapshotter(["restore", "--config", config, "--archive", archive]);
      expect(restored.status, restored.stderr).toBe(0);
      expect(await readFile(path.join(volumes[0] as string, "file.txt"), "utf8")).toBe("volume one\n");
      const again = await snapshotter(["backup", "--config", bigConfig, "--archive", archive]);
      expect(again.status, again.stderr).toBe(0);
    },
  );

  it("appends a new copy when the archive is a bind-mounted file, marks the old one superseded, compacts on the plain file", async () => {
    const dir = await scope.tempDir("stowage-snap-");
    const { config, volumes } = await seedVolumes(dir);
    const hostFile = path.join(dir, "host-backup.tar");
    await ddArchive(hostFile);
    const mounted = path.join(dir, "backup.tar");
    await writeFile(mounted, "");
    await run("mount", ["--bind", hostFile, mounted]);
    scope.defer("unmount the archive", () => run("umount", [mounted]));
    expect((await snapshotter(["backup", "--config", config, "--archive", mounted])).status).toBe(0);
    await writeFile(path.join(volumes[0] as string, "file.txt"), "newer\n");
    const again = await snapshotter(["backup", "--config", config, "--archive", mounted]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain("is a mount point (a bind-mounted file) and cannot be rewritten");
    expect((await snapshotter(["list", "--archive", mounted])).stdout).toContain("superseded");
    await writeFile(path.join(volumes[0] as string, "file.txt"), "garbage\n");
    expect((await snapshotter(["restore", "--config", config, "--archive", mounted])).status).toBe(0);
    expect(await readFile(path.join(volumes[0] as string, "file.txt"), "utf8")).toBe("newer\n");
    const refused = await snapshotter(["compact", "--archive", mounted]);
    expect([refused.status, refused.stderr]).toEqual([2, expect.stringContaining("is a mount point")]);
    await run("umount", [mounted]);
    scope.defer("remount for the cleanup's umount", () => run("mount", ["--bind", hostFile, mounted]));
    const compacted = await snapshotter(["compact", "--archive", hostFile]);
    expect(compacted.stdout).toContain("dropped 1 superseded");
    expect((await snapshotter(["list", "--archive", hostFile])).stdout).not.toContain("superseded");
  });

  it("shows progress (bytes done of the total, rate) on a terminal, and nothing off one", async () => {
    const dir = await scope.tempDir("stowage-snap-");
    const { config } = await seedVolumes(dir);
    await run("dd", [
      "if=/dev/zero",
      `of=${path.join(dir, "test-volumes", "volume1", "big")}`,
      "bs=1M",
      "count=20",
    ]);
    const archive = path.join(dir, "backup.tar");
    const quiet = await snapshotter(["backup", "--config", config, "--archive", archive]);
    expect(quiet.stderr).toBe("");
    const line = `${process.execPath} ${CLI} restore --config ${config} --archive ${archive}`;
    const onTty = await run("script", ["--quiet", "--return", "--command", line, "/dev/null"]);
    expect(onTty.stdout).toMatch(/restore: 20\.0 MiB \/ 20\.0 MiB, [\d.]+ [KMG]?i?B\/s/);
  });

  it.each([
    ["prefix: /abs\nvolumes: [/tmp]\n", 'prefix "/abs" must be relative'],
    ["prefix: a/../b\nvolumes: [/tmp]\n", "may not contain '.' or '..'"],
    ["volumes: [/tmp]\n", "prefix: missing"],
    ["prefix: p\nvolumes: [relative/path]\n", 'volumes[0] "relative/path" must be an absolute path'],
    [
      "prefix: p\nvolumes: [/nonexistent-stowage-volume]\n",
      "volume /nonexistent-stowage-volume: /nonexistent-stowage-volume does not exist",
    ],
    ["prefix: p\nvolumes: /tmp\n", "volumes: expected a list"],
    ["prefix: [p\n", "not valid YAML"],
    ["prefix: p\n", "volumes: missing"],
  ])("refuses a bad config (%j) naming the problem, archive untouched", async (text, message) => {
    const dir = await scope.tempDir("stowage-snap-");
    const config = path.join(dir, "config.yml");
    await writeFile(config, text);
    const archive = path.join(dir, "backup.tar");
    await ddArchive(archive);
    const result = await snapshotter(["backup", "--config", config, "--archive", archive]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(message);
    expect(await fileHash(archive)).toBe(sha256("\0".repeat(1024)));
  });

  it("refuses to restore a missing prefix or a volume not in the backup, before changing anything", async () => {
    const dir = await scope.tempDir("stowage-snap-");
    const { config, volumes } = await seedVolumes(dir);
    const archive = path.join(dir, "backup.tar");
    await ddArchive(archive);
    expect((await snapshotter(["backup", "--config", config, "--archive", archive])).status).toBe(0);
    const missing = await snapshotter([
      "restore",
      "--config",
      config,
      "--archive",
      archive,
      "--prefix",
      "nope",
    ]);
    expect([missing.status, missing.stderr]).toEqual([2, expect.stringContaining("prefix nope is not in")]);
    const extra = path.join(dir, "extra.yml");
    await writeFile(extra, `prefix: volumes/busy_lewin\nvolumes: [${volumes[0]}, /not/backed/up]\n`);
    await writeFile(path.join(volumes[0] as string, "file.txt"), "untouched\n");
    const notThere = await snapshotter(["restore", "--config", extra, "--archive", archive]);
    expect(notThere.status).toBe(2);
    expect(notThere.stderr).toContain("volume /not/backed/up is not in the backup");
    expect(await readFile(path.join(volumes[0] as string, "file.txt"), "utf8")).toBe("untouched\n");
    // A missing target is created (the original refuses).
    await rm(volumes[2] as string, { recursive: true });
    expect((await snapshotter(["restore", "--config", config, "--archive", archive])).status).toBe(0);
    expect(await readFile(path.join(volumes[2] as string, "file.txt"), "utf8")).toBe("volume three\n");
  });
});

/** Archives made with Python's tarfile, which writes whatever name it is given. */
async function craftArchive(file: string, prefix: string, target: string, members: string): Promise<void> {
  const id = sha256(target);
  const script = `
import io, tarfile, sys
file, prefix, vid, target = sys.argv[1:5]
def add(tar, name, data=b"", **kw):
    info = tarfile.TarInfo(name); info.size = len(data)
    for k, v in kw.items(): setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if data else None)
with tarfile.open(file, "w", format=tarfile.PAX_FORMAT) as tar:
    root = prefix + "/" + vid
    add(tar, root, type=tarfile.DIRTYPE, mode=0o755)
${members}
    index = ("- id: %s\\n  type: dir\\n  target: %s\\n" % (vid, target)).encode()
    add(tar, prefix + "/volumes-data.yml", index)
`;
  await run("python3", ["-c", script, file, prefix, id, target]);
}

describe("snapshotter restores archives in the original's format", () => {
  const scope = useScope();

  it("restores plain USTAR members as the Go original writes them (dirs without '/', root/root, index last)", async () => {
    const dir = await scope.tempDir("stowage-snap-orig-");
    const dirVolume = path.join(dir, "vol", "dirvol");
    const fileVolume = path.join(dir, "vol", "file.txt");
    const archive = path.join(dir, "original.tar");
    // Python's tarfile in USTAR format, member by member as the original's Go writer lays them out.
    const script = `
import io, tarfile, sys, time
archive, dirvol, filevol, did, fid = sys.argv[1:6]
def add(tar, name, data=None, mode=0o644, kind=tarfile.REGTYPE):
    info = tarfile.TarInfo(name); info.type = kind; info.mode = mode; info.mtime = int(time.time())
    info.uid = info.gid = 0; info.uname = info.gname = "root"
    info.size = len(data) if data else 0
    tar.addfile(info, io.BytesIO(data) if data else None)
with tarfile.open(archive, "w", format=tarfile.USTAR_FORMAT) as tar:
    add(tar, "volumes/orig/" + did, mode=0o755, kind=tarfile.DIRTYPE)
    add(tar, "volumes/orig/" + did + "/sub", mode=0o755, kind=tarfile.DIRTYPE)
    add(tar, "volumes/orig/" + did + "/sub/data.txt", b"from the original\\n")
    add(tar, "volumes/orig/" + fid, b"single file\\n")
    index = ("- id: %s\\n  type: dir\\n  target: %s\\n- id: %s\\n  type: file\\n  target: %s\\n" % (did, dirvol, fid, filevol)).encode()
    add(tar, "volumes/orig/volumes-data.yml", index, mode=0o600)
`;
    await run("python3", [
      "-c",
      script,
      archive,
      dirVolume,
      fileVolume,
      sha256(dirVolume),
      sha256(fileVolume),
    ]);
    const listed = await tarList(archive);
    expect(listed[0]).toMatch(new RegExp(`^volumes/orig/${sha256(dirVolume)}/?$`));
    const config = path.join(dir, "config.yml");
    await writeFile(config, `prefix: volumes/orig\nvolumes: [${dirVolume}, ${fileVolume}]\n`);
    const restored = await snapshotter(["restore", "--config", config, "--archive", archive]);
    expect(restored.status, restored.stderr).toBe(0);
    expect(await readFile(path.join(dirVolume, "sub", "data.txt"), "utf8")).toBe("from the original\n");
    expect(await readFile(fileVolume, "utf8")).toBe("single file\n");
    // And appending to it keeps it readable by GNU tar.
    await mkdir(path.join(dir, "more"));
    await writeFile(path.join(dir, "more", "x"), "x\n");
    await writeFile(
      path.join(dir, "more.yml"),
      `prefix: volumes/more\nvolumes: [${path.join(dir, "more")}]\n`,
    );
    expect(
      (await snapshotter(["backup", "--config", path.join(dir, "more.yml"), "--archive", archive])).status,
    ).toBe(0);
    expect(await tarList(archive)).toHaveLength(listed.length + 3);
  });
});

describe("snapshotter refuses malicious archives (nothing written outside the volume)", () => {
  const scope = useScope();

  async function setup(scope: TestScope, members: string) {
    const dir = await scope.tempDir("stowage-snap-evil-");
    const volume = path.join(dir, "vol");
    await mkdir(volume);
    await writeFile(path.join(volume, "keep"), "existing data\n");
    const archive = path.join(dir, "evil.tar");
    await craftArchive(archive, "p", volume, members);
    const config = path.join(dir, "config.yml");
    await writeFile(config, `prefix: p\nvolumes: [${volume}]\n`);
    return { dir, volume, archive, config };
  }

  it.each([
    ["traversal", `    add(tar, root + "/../../escaped", b"x")`, "would escape its volume"],
    ["absolute-looking", `    add(tar, root + "//etc/escaped", b"x")`, "would escape its volume"],
    [
      "symlink then a file through it",
      `    add(tar, root + "/link", type=tarfile.SYMTYPE, linkname="/tmp")\n    add(tar, root + "/link/escaped", b"x")`,
      "which the archive makes a symlink",
    ],
    [
      "hard link to /etc/passwd",
      `    add(tar, root + "/passwd", type=tarfile.LNKTYPE, linkname="/etc/passwd")`,
      "outside its volume",
    ],
    [
      "hard link out through ..",
      `    add(tar, root + "/passwd", type=tarfile.LNKTYPE, linkname=root + "/../../../etc/passwd")`,
      "would escape its volume",
    ],
  ])("%s", async (_, members, message) => {
    const { dir, volume, archive, config } = await setup(scope, members);
    const before = await readdir(dir, { recursive: true });
    const result = await snapshotter(["restore", "--config", config, "--archive", archive]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(message);
    expect(await readFile(path.join(volume, "keep"), "utf8")).toBe("existing data\n");
    expect(await readdir(dir, { recursive: true })).toEqual(before);
    await expect(stat("/tmp/escaped")).rejects.toThrow();
  });

  it("a huge declared size or a truncated archive is an error before anything is deleted", async () => {
    const { volume, archive, config } = await setup(scope, `    add(tar, root + "/big", b"y" * 100000)`);
    const size = (await stat(archive)).size;
    await truncate(archive, size - 60_000);
    const truncated = await snapshotter(["restore", "--config", config, "--archive", archive]);
    expect(truncated.status).toBe(2);
    expect(truncated.stderr).toContain("not a valid tar archive");
    expect(await readFile(path.join(volume, "keep"), "utf8")).toBe("existing data\n");

    // A header claiming a terabyte: rewrite the octal size field and its checksum.
    const huge = await setup(scope, `    add(tar, root + "/big", b"y" * 1000)`);
    const bytes = await readFile(huge.archive);
    const names = (await run("tar", ["-tvf", huge.archive])).stdout;
    expect(names).toContain("/big");
    for (let offset = 0; offset < bytes.length; offset += 512) {
      if (
        bytes
          .subarray(offset, offset + 100)
          .toString("latin1")
          .replace(/\0+$/, "")
          .endsWith("/big")
      ) {
        bytes.write("17777777777\0", offset + 124, "ascii");
        bytes.fill(0x20, offset + 148, offset + 156);
        let sum = 0;
        for (let i = offset; i < offset + 512; i++) sum += bytes[i] as number;
        bytes.write(`${sum.toString(8).padStart(6, "0")}\0 `, offset + 148, "ascii");
      }
    }
    await writeFile(huge.archive, bytes);
    const result = await snapshotter(["restore", "--config", huge.config, "--archive", huge.archive]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("member data truncated");
    expect(await readFile(path.join(huge.volume, "keep"), "utf8")).toBe("existing data\n");
  });
});

describe("snapshotter host mode (real Docker engine)", () => {
  const scope = useScope();

  async function docker(args: string[]): Promise<string> {
    return (await run("docker", args)).stdout.trim();
  }

  it("saves a running container's named volume, bind dir and bind file through the Docker API, stops and restarts it, restores exactly", async () => {
    const image = await ensureTestImage(scope);
    const dir = await scope.tempDir("stowage-snap-host-");
    const name = uniqueId("stowage-snap");
    const volume = await docker(["volume", "create", "--label", TEST_LABEL, `${name}-data`]);
    scope.defer(`remove volume ${volume}`, () => run("docker", ["volume", "rm", "-f", volume]));
    const bindDir = path.join(dir, "config");
    await mkdir(bindDir);
    await fidelityTree(bindDir);
    const bindFile = path.join(dir, "app.conf");
    await writeFile(bindFile, "setting=1\n");
    await docker([
      "run",
      "-d",
      "--name",
      name,
      "--label",
      TEST_LABEL,
      "--network",
      "none",
      "-v",
      `${volume}:/data`,
      "-v",
      `${bindDir}:/config`,
      "-v",
      `${bindFile}:/etc/app.conf`,
      image,
      "sh",
      "-c",
      "[ -e /data/written ] || { echo from-container > /data/written; mkdir -p /data/sub; echo deep > /data/sub/f; }; exec sleep 3600",
    ]);
    scope.defer(`remove container ${name}`, () => run("docker", ["rm", "-f", name]));
    const volumePath = await docker(["volume", "inspect", "--format", "{{.Mountpoint}}", volume]);
    for (let i = 0; i < 100 && !(await stat(path.join(volumePath, "sub", "f")).catch(() => undefined)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const before = {
      data: await describeTree(volumePath),
      config: await describeTree(bindDir),
      file: await readFile(bindFile, "utf8"),
    };
    const archive = path.join(dir, "host.tar");
    const saved = await snapshotter([
      "backup",
      "--container",
      name,
      "--prefix",
      `volumes/${name}`,
      "--archive",
      archive,
      "--stop",
      "--stop-timeout",
      "1",
    ]);
    expect(saved.status, saved.stderr).toBe(0);
    expect(saved.stdout).toContain(`stopping container ${name}`);
    expect(saved.stdout).toContain(`started container ${name} again`);
    expect(saved.stdout).toContain("3 volume(s)");
    expect(await docker(["inspect", "--format", "{{.State.Running}}", name])).toBe("true");
    const listing = JSON.parse((await snapshotter(["list", "--archive", archive, "--json"])).stdout);
    expect(listing.copies[0].volumes.map((v: { target: string }) => v.target)).toEqual([
      "/config",
      "/data",
      "/etc/app.conf",
    ]);

    await run("sh", ["-c", `rm -rf "${volumePath}"/* "${bindDir}"/*`]);
    await writeFile(bindFile, "broken\n");
    await appendFile(bindFile, "more\n");
    const restored = await snapshotter([
      "restore",
      "--container",
      name,
      "--prefix",
      `volumes/${name}`,
      "--archive",
      archive,
      "--stop",
    ]);
    expect(restored.status, restored.stderr).toBe(0);
    expect(sameTree(await describeTree(volumePath), before.data)).toEqual(before.data);
    expect(sameTree(await describeTree(bindDir), before.config)).toEqual(before.config);
    expect(await readFile(bindFile, "utf8")).toBe(before.file);
    expect(await docker(["exec", name, "cat", "/etc/app.conf"])).toBe("setting=1");
    expect(await docker(["exec", name, "cat", "/data/sub/f"])).toBe("deep");

    const bogus = path.join(dir, "bogus.yml");
    await writeFile(bogus, "prefix: x\nvolumes: [/srv]\n");
    // A failure on the way still starts the container again.
    const failing = await snapshotter([
      "backup",
      "--container",
      name,
      "--prefix",
      "x",
      "--archive",
      dir,
      "--stop",
      "--stop-timeout",
      "1",
    ]);
    expect(failing.status).toBe(2);
    expect(failing.stderr).toContain("is a directory");
    expect(await docker(["inspect", "--format", "{{.State.Running}}", name])).toBe("true");
    const notAMount = await snapshotter([
      "backup",
      "--container",
      name,
      "--prefix",
      "x",
      "--archive",
      archive,
      "--config",
      bogus,
    ]);
    expect([notAMount.status, notAMount.stderr]).toEqual([
      2,
      expect.stringContaining("/srv is not a mount of container"),
    ]);
  });
});
