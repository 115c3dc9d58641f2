import { spawn } from "node:child_process";
import { mkdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { ensureTestImage, TEST_LABEL } from "../support/docker.js";
import { type TestScope, uniqueId, useScope } from "../support/scope.js";
import { mountTmpfs } from "../support/tmpfs.js";
import { BYTETREE, config, describeBytes, expectSameTree, snapshotter, start } from "./harness.js";

/** Resolves once `file` is larger than `bytes` (polled; a backup writing it is under way). */
async function grownPast(file: string, bytes: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const size = await stat(file).then(
      (s) => s.size,
      () => 0,
    );
    if (size > bytes) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`${file} did not grow past ${bytes} bytes`);
}

/** A sparse file of `bytes` made by truncate(1): cheap on disk, real data to the reader. */
async function sparse(file: string, bytes: number): Promise<void> {
  await run("truncate", ["-s", String(bytes), file]);
}

async function tarNames(archive: string): Promise<string[]> {
  return (await run("tar", ["--warning=no-unknown-keyword", "-tf", archive])).stdout.trim().split("\n");
}

describe("snapshotter: two writers of one archive (a second real process)", () => {
  const scope = useScope();

  /** A first writer stopped (SIGSTOP) in the middle of a 1 GiB volume, and a second one started. */
  async function twoWriters() {
    const dir = await scope.tempDir("stowage-snap-lock-");
    const [a, b] = [path.join(dir, "a"), path.join(dir, "b")];
    await mkdir(a);
    await mkdir(b);
    await sparse(path.join(a, "big"), 1024 ** 3);
    await writeFile(path.join(b, "only-b"), "b\n");
    const archive = path.join(dir, "backup.tar");
    const configB = await config(dir, [b], "volumes/b");
    const first = start(["backup", "--config", await config(dir, [a], "volumes/a"), "--archive", archive]);
    await grownPast(archive, 16 * 1024 * 1024);
    // Stalled: no timer, no heartbeat of the holder runs (what a long synchronous write did).
    first.kill("SIGSTOP");
    const second = start(["backup", "--config", configB, "--archive", archive]);
    return { b, archive, configB, first, second };
  }

  it("a writer stalled for 5 s keeps its lock: the second waits, both copies are stored and restore", async () => {
    const { b, archive, configB, first, second } = await twoWriters();
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    // A heartbeat lock (stale after 3 s) was taken over by now; a kernel lock is not.
    expect(second.exitCode).toBe(null);
    first.kill("SIGCONT");
    const [one, two] = await Promise.all([first.output, second.output]);
    expect(one.status, one.stderr).toBe(0);
    expect(two.status, two.stderr).toBe(0);
    expect(two.stderr).toContain("is being written by another process; waiting for it");
    const listed = (await snapshotter(["list", "--archive", archive])).stdout;
    expect(listed).toContain("volumes/a  1 volume(s)");
    expect(listed).toContain("volumes/b  1 volume(s)");
    await rm(b, { recursive: true });
    const restored = await snapshotter(["restore", "--config", configB, "--archive", archive]);
    expect(restored.status, restored.stderr).toBe(0);
    expect(await readFile(path.join(b, "only-b"), "utf8")).toBe("b\n");
    expect((await tarNames(archive)).filter((n) => n.endsWith("/big"))).toHaveLength(1);
  });

  it("a writer killed with -9 frees the archive at once; the waiting one goes on", async () => {
    const { archive, first, second } = await twoWriters();
    await new Promise((resolve) => setTimeout(resolve, 500));
    first.kill("SIGKILL");
    const started = Date.now();
    const two = await second.output;
    expect(two.status, two.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    const listed = (await snapshotter(["list", "--archive", archive])).stdout;
    expect(listed).not.toContain("volumes/a");
    expect(listed).toContain("volumes/b  1 volume(s)");
    expect(await tarNames(archive)).toContain("volumes/b/volumes-data.yml");
  });
});

describe("snapshotter: names are bytes (made by Python, checked by GNU tar)", () => {
  const scope = useScope();

  it("backs up names that are not UTF-8; GNU tar extracts the same bytes; restore makes them exactly", async () => {
    const dir = await scope.tempDir("stowage-snap-bytes-");
    const volume = path.join(dir, "vol");
    await run("python3", [BYTETREE, "make", volume]);
    const before = await describeBytes(volume);
    const archive = path.join(dir, "backup.tar");
    const cfg = await config(dir, [volume]);
    const saved = await snapshotter(["backup", "--config", cfg, "--archive", archive]);
    expect(saved.status, saved.stderr).toBe(0);

    const out = path.join(dir, "gnu");
    await mkdir(out);
    await run("tar", [
      "--warning=no-unknown-keyword",
      "--xattrs",
      "--xattrs-include=*",
      "-xpf",
      archive,
      "-C",
      out,
    ]);
    const id = (await tarNames(archive))[0]?.replace(/^p\//, "").replace(/\/$/, "") as string;
    expect(await describeBytes(path.join(out, "p", id))).toEqual(before);

    await rm(volume, { recursive: true });
    const restored = await snapshotter(["restore", "--config", cfg, "--archive", archive]);
    expect(restored.status, restored.stderr).toBe(0);
    expectSameTree(await describeBytes(volume), before);
  });

  it("restores a GNU tar archive of such names in snapshotter's layout to the same bytes", async () => {
    const dir = await scope.tempDir("stowage-snap-bytes-");
    const volume = path.join(dir, "vol");
    await run("python3", [BYTETREE, "make", volume]);
    const before = await describeBytes(volume);
    // The layout by hand: <prefix>/<sha256 of the target>/..., then the index, archived by GNU tar.
    const id = (await run("sh", ["-c", 'printf %s "$0" | sha256sum | cut -d" " -f1', volume])).stdout.trim();
    const stage = path.join(dir, "stage");
    await mkdir(path.join(stage, "p"), { recursive: true });
    await run("cp", ["-a", volume, path.join(stage, "p", id)]);
    await writeFile(
      path.join(stage, "p", "volumes-data.yml"),
      `- id: ${id}\n  type: dir\n  target: ${volume}\n`,
    );
    const archive = path.join(dir, "gnu.tar");
    await run("tar", [
      "--format=posix",
      "--xattrs",
      "--xattrs-include=*",
      "-cf",
      archive,
      "-C",
      stage,
      `p/${id}`,
      "p/volumes-data.yml",
    ]);
    await rm(volume, { recursive: true });
    const restored = await snapshotter([
      "restore",
      "--config",
      await config(dir, [volume]),
      "--archive",
      archive,
    ]);
    expect(restored.status, restored.stderr).toBe(0);
    expectSameTree(await describeBytes(volume), before);
  });
});

describe("snapshotter: a tree that changes while it is read (like GNU tar)", () => {
  const scope = useScope();

  it.each([
    ["shrinks", "truncate -s 1M"],
    ["grows", "fallocate -o 1G -l 1M"],
  ])(
    "a file that %s while read, and one that vanishes: warned, archived valid, exit 1",
    async (what, command) => {
      const dir = await scope.tempDir("stowage-snap-live-");
      const volume = path.join(dir, "vol");
      await mkdir(volume);
      await sparse(path.join(volume, "a-big"), 1024 ** 3);
      await writeFile(path.join(volume, "m-steady"), "steady\n");
      await writeFile(path.join(volume, "z-vanishes"), "gone soon\n");
      const archive = path.join(dir, "backup.tar");
      const backup = start(["backup", "--config", await config(dir, [volume]), "--archive", archive]);
      await grownPast(archive, 64 * 1024 * 1024);
      // What a running container does beside the backup: its files change and disappear.
      await run("sh", ["-c", `${command} "$0/a-big" && rm "$0/z-vanishes"`, volume]);
      const result = await backup.output;
      expect(result.status, result.stderr).toBe(1);
      expect(result.stderr).toMatch(
        what === "shrinks"
          ? /a-big: shrank by \d+ bytes while being read; padded with zeros/
          : /a-big: grew by \d+ bytes while being read/,
      );
      expect(result.stderr).toContain("z-vanishes: vanished before it could be read; not archived");
      expect(result.stderr).toContain("2 file(s) changed or vanished while being read");
      const listing = (await run("tar", ["-tvf", archive])).stdout;
      expect(listing).toMatch(/ 1073741824 .*\/a-big\n/);
      expect(listing).toContain("/m-steady\n");
      expect(listing).not.toContain("z-vanishes");
      // The archive is whole: it restores, and the steady file is as it was.
      await rm(volume, { recursive: true });
      const restored = await snapshotter([
        "restore",
        "--config",
        await config(dir, [volume]),
        "--archive",
        archive,
      ]);
      expect(restored.status, restored.stderr).toBe(0);
      expect(await readFile(path.join(volume, "m-steady"), "utf8")).toBe("steady\n");
      expect((await stat(path.join(volume, "a-big"))).size).toBe(1024 ** 3);
    },
  );

  it("backs up beside a process that keeps creating and deleting files: never a failure, always a valid archive", async () => {
    const dir = await scope.tempDir("stowage-snap-churn-");
    const volume = path.join(dir, "vol");
    await mkdir(path.join(volume, "tmp"), { recursive: true });
    await run("sh", ["-c", 'for i in $(seq 1 3000); do echo $i > "$0/f$i"; done', volume]);
    const churn = spawn(
      "sh",
      [
        "-c",
        'while :; do for i in $(seq 1 200); do echo x > "$0/tmp/t$i"; done; rm -f "$0"/tmp/t*; done',
        volume,
      ],
      {
        stdio: "ignore",
      },
    );
    scope.defer("stop the churn", async () => {
      churn.kill("SIGKILL");
    });
    const archive = path.join(dir, "backup.tar");
    const cfg = await config(dir, [volume]);
    for (let round = 0; round < 5; round++) {
      const result = await snapshotter(["backup", "--config", cfg, "--archive", archive]);
      expect([0, 1], result.stderr).toContain(result.status);
      expect(result.stderr).not.toContain("internal error");
    }
    churn.kill("SIGKILL");
    expect((await tarNames(archive)).filter((n) => n.endsWith("/f3000"))).toHaveLength(1);
  });
});

describe("snapshotter: no silent caps", () => {
  const scope = useScope();

  it("keeps the xattrs of 100,000 files (a getfattr dump far over 16 MiB), set with setfattr --restore", async () => {
    // On a tmpfs: 100,000 files made, deleted and made again cost minutes on the disk's ext4 (discard).
    const dir = await scope.tempDir("stowage-snap-xattrs-");
    await mountTmpfs(scope, dir, { mountOptions: ["size=1g"] });
    const volume = path.join(dir, "vol");
    // 100 directories of 1,000 files, every one with a 200-byte label, as SELinux hosts have.
    await run("python3", [
      "-c",
      "import os,sys\nroot=sys.argv[1]\nfor d in range(100):\n  p=f'{root}/d{d:03}'\n  os.makedirs(p)\n  for i in range(1000): open(f'{p}/f{i:04}','w').close()",
      volume,
    ]);
    const dump = path.join(dir, "dump");
    await run("python3", [
      "-c",
      "import sys\nroot=sys.argv[1]\nwith open(sys.argv[2],'w') as out:\n  for d in range(100):\n    for i in range(1000):\n      out.write(f'# file: {root}/d{d:03}/f{i:04}\\nuser.label=\"{d:03}{i:04}' + 'x'*193 + '\"\\n\\n')",
      volume,
      dump,
    ]);
    await run("setfattr", [`--restore=${dump}`]);
    const archive = path.join(dir, "backup.tar");
    const cfg = await config(dir, [volume]);
    const saved = await snapshotter(["backup", "--config", cfg, "--archive", archive]);
    expect(saved.status, saved.stderr).toBe(0);
    await rm(volume, { recursive: true });
    const restored = await snapshotter(["restore", "--config", cfg, "--archive", archive]);
    expect(restored.status, restored.stderr).toBe(0);
    const after =
      // Directories lack the label: getfattr says so and exits 1.
      (
        await run("getfattr", ["-R", "--absolute-names", "-n", "user.label", "--only-values", volume], {
          maxStdoutBytes: 256 * 1024 * 1024,
          okStatuses: [0, 1],
        })
      ).stdout;
    expect(after.length).toBe(100_000 * 200);
    expect(after).toContain(`0990999${"x".repeat(193)}`);
  });
});

describe("snapshotter restore: never deletes across a filesystem boundary", () => {
  const scope = useScope();

  it("a volume reached through a symlink, with a filesystem mounted inside: that filesystem is left alone", async () => {
    const dir = await scope.tempDir("stowage-snap-fence-");
    const real = path.join(dir, "real", "vol");
    await mkdir(path.join(real, "mnt"), { recursive: true });
    await writeFile(path.join(real, "file"), "backed up\n");
    const link = path.join(dir, "link");
    await symlink(path.join(dir, "real"), link);
    const volume = path.join(link, "vol");
    const archive = path.join(dir, "backup.tar");
    const cfg = await config(dir, [volume]);
    expect((await snapshotter(["backup", "--config", cfg, "--archive", archive])).status).toBe(0);
    await mountTmpfs(scope, path.join(real, "mnt"));
    await writeFile(path.join(real, "mnt", "precious"), "on another filesystem\n");
    await writeFile(path.join(real, "extra"), "not in the backup\n");
    const restored = await snapshotter(["restore", "--config", cfg, "--archive", archive]);
    expect(restored.status, restored.stderr).toBe(0);
    expect(restored.stderr).toMatch(/mnt is on another filesystem or a mount point .*left as it is/);
    expect(await readFile(path.join(real, "mnt", "precious"), "utf8")).toBe("on another filesystem\n");
    expect(await readFile(path.join(real, "file"), "utf8")).toBe("backed up\n");
    await expect(stat(path.join(real, "extra"))).rejects.toThrow();
  });
});

describe("snapshotter --stop: signals while the archive is written (real Docker engine)", () => {
  const scope = useScope();

  async function containerWithVolume(s: TestScope, bytes: number) {
    const image = await ensureTestImage(s);
    const name = uniqueId("stowage-snap-sig");
    const volume = (
      await run("docker", ["volume", "create", "--label", TEST_LABEL, `${name}-data`])
    ).stdout.trim();
    s.defer(`remove volume ${volume}`, () => run("docker", ["volume", "rm", "-f", volume]));
    await run("docker", [
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
      image,
      "sleep",
      "3600",
    ]);
    s.defer(`remove container ${name}`, () => run("docker", ["rm", "-f", name]));
    const mountpoint = (
      await run("docker", ["volume", "inspect", "--format", "{{.Mountpoint}}", volume])
    ).stdout.trim();
    await sparse(path.join(mountpoint, "big"), bytes);
    return name;
  }

  it("SIGTERM mid-write: stops at once, starts the container again, exits 143, the archive as before", async () => {
    const name = await containerWithVolume(scope, 4 * 1024 ** 3);
    const dir = await scope.tempDir("stowage-snap-sig-");
    const archive = path.join(dir, "backup.tar");
    const cfg = await config(dir, ["/etc/hostname"], "other");
    expect((await snapshotter(["backup", "--config", cfg, "--archive", archive])).status).toBe(0);
    const before = await readFile(archive);
    const backup = start([
      "backup",
      "--container",
      name,
      "--prefix",
      "volumes/sig",
      "--archive",
      archive,
      "--stop",
      "--stop-timeout",
      "1",
    ]);
    await grownPast(archive, before.length + 64 * 1024 * 1024);
    const signalled = Date.now();
    backup.kill("SIGTERM");
    const result = await backup.output;
    // Well within docker's default 10 s stop timeout: the write yields, the handler runs at once.
    expect(Date.now() - signalled).toBeLessThan(3_000);
    expect(result.status, result.stderr).toBe(143);
    expect(result.stdout).toContain(`started container ${name} again`);
    expect((await run("docker", ["inspect", "--format", "{{.State.Running}}", name])).stdout.trim()).toBe(
      "true",
    );
    expect(await readFile(archive)).toEqual(before);
  });
});

describe("snapshotter: a full disk (a real tmpfs that fills up)", () => {
  const scope = useScope();

  it("fails naming ENOSPC, exit 1, and the archive reads as before with every earlier copy", async () => {
    const dir = await scope.tempDir("stowage-snap-full-");
    const disk = path.join(dir, "disk");
    await mountTmpfs(scope, disk, { mountOptions: ["size=24m"] });
    const volume = path.join(dir, "volume");
    await mkdir(volume);
    await run("dd", ["if=/dev/urandom", `of=${path.join(volume, "small")}`, "bs=1k", "count=64"]);
    const archive = path.join(disk, "backup.tar");
    const backup = async (prefix: string) =>
      snapshotter(["backup", "--config", await config(dir, [volume], prefix), "--archive", archive]);
    expect((await backup("one")).status).toBe(0);
    const before = (await run("tar", ["-tvf", archive])).stdout;
    // 40 MiB of incompressible data: many buffers handed to the thread pool before the disk fills.
    await run("dd", ["if=/dev/urandom", `of=${path.join(volume, "big")}`, "bs=1M", "count=40"]);
    const full = await backup("two");
    expect(full.status).toBe(1);
    expect(full.stderr).toMatch(/ENOSPC|no space left on device/);
    expect(full.stderr).not.toMatch(/internal error/);
    // Nothing of the failed copy is visible, and the space it took is given back.
    expect((await run("tar", ["-tvf", archive])).stdout).toBe(before);
    expect((await stat(archive)).size).toBeLessThan(1024 * 1024);
    const restored = await snapshotter(["list", "--archive", archive]);
    expect(restored.stdout).toContain("one");
  });
});
