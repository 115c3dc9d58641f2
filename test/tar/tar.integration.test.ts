import { closeSync, openSync } from "node:fs";
import {
  chmod,
  chown,
  link,
  lstat,
  mkdir,
  open,
  readFile,
  readlink,
  symlink,
  truncate,
  utimes,
  writeFile,
} from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { TreeArchiver } from "../../src/tar/archive-tree.js";
import { writeArchive } from "../../src/tar/archive-writer.js";
import { END_OF_ARCHIVE, encodeHeader, padding } from "../../src/tar/header.js";
import { bytesOf } from "../../src/tar/names.js";
import { type Member, scanArchive } from "../../src/tar/reader.js";
import { LiveChanges, walkTree } from "../../src/tar/tree.js";
import { gnuTarExtractAll } from "../support/gnu-tar.js";
import { useScope } from "../support/scope.js";
import { xattrsOfTree } from "../support/xattrs.js";

/** A tree with everything a volume can hold, made with the usual tools and syscalls. */
async function richTree(dir: string): Promise<void> {
  await mkdir(path.join(dir, "empty-dir"));
  await mkdir(path.join(dir, "sticky"), { mode: 0o1777 });
  await chmod(path.join(dir, "sticky"), 0o1777);
  await writeFile(path.join(dir, "plain.txt"), "hello\n");
  await writeFile(path.join(dir, "setuid"), "#!/bin/sh\n");
  await chmod(path.join(dir, "setuid"), 0o6755);
  await writeFile(path.join(dir, "big-ids"), "owner beyond ustar\n");
  await chown(path.join(dir, "big-ids"), 3_000_000, 4_000_000);
  await writeFile(path.join(dir, "ünïcödé ✓ name"), "utf-8\n");
  const deep = path.join(
    dir,
    ...Array.from({ length: 6 }, (_, i) => `directory-level-${i}-${"d".repeat(40)}`),
  );
  await mkdir(deep, { recursive: true });
  await writeFile(path.join(deep, `file-${"f".repeat(120)}`), "deep\n");
  await symlink(`../${"t".repeat(150)}/dangling-target`, path.join(dir, "long-link"));
  await symlink("plain.txt", path.join(dir, "short-link"));
  await writeFile(path.join(dir, "hard-a"), "linked\n");
  await link(path.join(dir, "hard-a"), path.join(dir, "hard-b"));
  await run("mkfifo", [path.join(dir, "fifo")]);
  await run("mknod", [path.join(dir, "null-like"), "c", "1", "3"]);
  await run("setfattr", ["-n", "user.note", "-v", "0x00ff10", path.join(dir, "plain.txt")]);
  await run("setfacl", ["-m", "u:1234:rwx", path.join(dir, "plain.txt")]);
  await run("setfacl", ["-d", "-m", "g:2345:rx", path.join(dir, "sticky")]);
  await utimes(path.join(dir, "plain.txt"), 1_700_000_000.123456, 1_700_000_000.123456);
}

async function archiveTree(root: string, file: string, warnings: string[]): Promise<void> {
  const changes = new LiveChanges((w) => warnings.push(w));
  const walk = walkTree(bytesOf(root), {
    prefix: "vol",
    includeRoot: true,
    warn: (w) => warnings.push(w),
    changes,
  });
  const fd = openSync(file, "w");
  try {
    await writeArchive(fd, 0, {}, (writer) => new TreeArchiver(writer, changes).addAll(walk));
  } finally {
    closeSync(fd);
  }
}

interface Described {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number | null;
  mtimeNs: bigint | null;
  link: string | null;
  rdev: number;
  ino: bigint;
}

async function describeTree(root: string, names: string[]): Promise<Map<string, Described>> {
  const out = new Map<string, Described>();
  for (const name of names) {
    const file = path.join(root, name);
    const info = await lstat(file, { bigint: true });
    const type = info.isDirectory()
      ? "dir"
      : info.isSymbolicLink()
        ? "symlink"
        : info.isFIFO()
          ? "fifo"
          : info.isCharacterDevice()
            ? "char"
            : "file";
    out.set(name, {
      type,
      mode: Number(info.mode & 0o7777n),
      uid: Number(info.uid),
      gid: Number(info.gid),
      size: type === "file" ? Number(info.size) : null,
      // A directory's mtime changes as tar fills it; symlink times are not restored by tar.
      mtimeNs: type === "file" || type === "fifo" || type === "char" ? info.mtimeNs : null,
      link: type === "symlink" ? await readlink(file) : null,
      rdev: Number(info.rdev),
      ino: info.ino,
    });
  }
  return out;
}

describe("tar layer against GNU tar", () => {
  const scope = useScope();

  it("writes every kind of file so that GNU tar restores it exactly (owner, mode, ns mtime, xattrs, ACLs, links)", async () => {
    const dir = await scope.tempDir("stowage-tar-");
    const source = path.join(dir, "source");
    await mkdir(source);
    await richTree(source);
    const server = net.createServer().listen(path.join(source, "a.sock"));
    scope.defer("close the socket", () => new Promise((resolve) => server.close(resolve)));
    await new Promise((resolve) => server.once("listening", resolve));

    const archive = path.join(dir, "out.tar");
    const warnings: string[] = [];
    await archiveTree(source, archive, warnings);
    expect(warnings).toEqual([
      `${path.join(source, "a.sock")}: socket skipped (a socket cannot be archived)`,
    ]);

    const listed = (await run("tar", ["-tf", archive])).stdout.trim().split("\n");
    const names = (
      await run("find", [source, "-mindepth", "1", "-not", "-type", "s", "-printf", "%P\n"])
    ).stdout
      .trim()
      .split("\n")
      .sort();
    expect(
      listed
        .map((n) => n.replace(/^vol\/?/, "").replace(/\/$/, ""))
        .filter((n) => n !== "")
        .sort(),
    ).toEqual(names);
    expect(listed[0]).toBe("vol/");

    const target = path.join(dir, "target");
    await gnuTarExtractAll(archive, target);
    const restored = path.join(target, "vol");
    const before = await describeTree(source, names);
    const after = await describeTree(restored, names);
    for (const name of names) {
      const { ino: _a, ...want } = before.get(name) as Described;
      const { ino: _b, ...got } = after.get(name) as Described;
      expect(got, name).toEqual(want);
    }
    expect(after.get("hard-a")?.ino).toBe(after.get("hard-b")?.ino);
    const xattrsBefore = await xattrsOfTree(source);
    const xattrsAfter = await xattrsOfTree(restored);
    for (const name of ["plain.txt", "sticky"]) {
      const want = xattrsBefore.get(bytesOf(path.join(source, name)));
      expect(want?.size, name).toBeGreaterThan(0);
      expect(xattrsAfter.get(bytesOf(path.join(restored, name))), name).toEqual(want);
    }
    expect(await readFile(path.join(restored, "ünïcödé ✓ name"), "utf8")).toBe("utf-8\n");
  });

  it("describes sizes beyond ustar's 8 GiB in a pax record GNU tar reads", async () => {
    const dir = await scope.tempDir("stowage-tar-");
    const archive = path.join(dir, "big.tar");
    const size = 10 * 1024 ** 3 + 7;
    const header = encodeHeader({
      name: "huge.bin",
      type: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      size,
      mtime: { seconds: 1_700_000_000, nanoseconds: 0 },
    });
    const handle = await open(archive, "w");
    await handle.write(header, 0, header.length, 0);
    const end = header.length + size + padding(size).length;
    await handle.write(END_OF_ARCHIVE, 0, END_OF_ARCHIVE.length, end);
    await handle.close();
    await truncate(archive, end + END_OF_ARCHIVE.length);
    const listing = (await run("tar", ["-tvf", archive])).stdout;
    expect(listing).toMatch(new RegExp(`^-rw-r--r-- 0/0 +${size} 2023-11-1\\d \\d\\d:\\d\\d huge\\.bin\\n$`));
  });
});

describe("tar reader on archives GNU tar wrote", () => {
  const scope = useScope();

  it.each(["gnu", "posix", "ustar"])(
    "walks a --format=%s archive: names, types, sizes, links and the real end",
    async (format) => {
      const dir = await scope.tempDir("stowage-tar-read-");
      const source = path.join(dir, "src");
      await mkdir(source);
      const long = `${"d".repeat(120)}/${"f".repeat(90)}`;
      await mkdir(path.join(source, "d".repeat(120)));
      await writeFile(path.join(source, long), "long\n");
      await writeFile(path.join(source, "small"), "x".repeat(1000));
      await symlink("small", path.join(source, "link"));
      await link(path.join(source, "small"), path.join(source, "hard"));
      if (format !== "ustar") await run("setfattr", ["-n", "user.k", "-v", "v", path.join(source, "small")]);
      const archive = path.join(dir, "a.tar");
      const names =
        format === "ustar" ? ["small", "link", "hard"] : ["small", "link", "hard", "d".repeat(120), long];
      await run("tar", [`--format=${format}`, "--xattrs", "-cf", archive, "-C", source, ...names]);
      const members: Member[] = [];
      const scan = await scanArchive(archive, {
        onMember: (member) => {
          members.push(member);
        },
      });
      expect(members.map((m) => m.name.replace(/\/$/, ""))).toEqual(
        (await run("tar", ["-tf", archive])).stdout
          .trim()
          .split("\n")
          .map((n) => n.replace(/\/$/, "")),
      );
      const small = members.find((m) => m.name === "small");
      expect([small?.type, small?.size]).toEqual(["file", 1000]);
      expect(members.find((m) => m.name === "link")).toMatchObject({
        type: "symlink",
        linkname: "small",
      });
      expect(members.find((m) => m.name === "hard")).toMatchObject({
        type: "hardlink",
        linkname: "small",
        size: 0,
      });
      if (format !== "ustar") {
        expect(small?.xattrs.get("user.k")?.toString()).toBe("v");
        expect(members.find((m) => m.name === long)?.size).toBe(5);
      }
      // GNU tar pads to 10 KiB records: the end is where the zero blocks start, not the file's end.
      expect(scan.fileSize % 10240).toBe(0);
      expect(scan.end).toBe(members.at(-1)?.endOffset);
    },
  );
});
