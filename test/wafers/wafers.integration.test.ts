import { spawn } from "node:child_process";
import { lstat, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { buildRootfs } from "../support/docker.js";
import { useScope } from "../support/scope.js";
import { mountTmpfs } from "../support/tmpfs.js";
import { mountsUnder, type Roots, wafers, wafersRoots } from "./harness.js";

/** `mkdir -p archbase/data` plus a small bootable-ish root (busybox instead of pacstrap). */
async function baseWafer(roots: Roots, name = "archbase"): Promise<string> {
  const data = path.join(roots.wafers, name, "data");
  await mkdir(data, { recursive: true });
  await buildRootfs(data);
  await mkdir(path.join(data, "etc"));
  await writeFile(path.join(data, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  await writeFile(path.join(data, "etc", "motd"), "hello\n");
  return data;
}

/** A chain of wafers made by hand in the original's layout: data/, work/ and a parent file. */
async function handMadeChain(roots: Roots, names: string[]): Promise<void> {
  for (const [index, name] of names.entries()) {
    const dir = path.join(roots.wafers, name);
    await mkdir(path.join(dir, "data"), { recursive: true });
    await writeFile(path.join(dir, "data", `layer-${index}`), `${name}\n`);
    if (index > 0) {
      await mkdir(path.join(dir, "work"));
      await writeFile(path.join(dir, "parent"), `${names[index - 1]}\n`);
    }
  }
}

describe("wafers on a real kernel overlayfs", () => {
  const scope = useScope();

  it("runs the seed's example verbatim", async () => {
    const roots = await wafersRoots(scope);
    await baseWafer(roots);
    const stacked = await wafers(["stack", "archbase2", "archbase"], roots.env, roots.wafers);
    expect([stacked.status, stacked.stdout, stacked.stderr]).toEqual([
      0,
      `2 wafers stacked at ${roots.stacks}/archbase2\n`,
      "",
    ]);
    // The raw wafer is empty; the stack shows the base.
    expect(await readdir(path.join(roots.wafers, "archbase2", "data"))).toEqual([]);
    const stackDir = path.join(roots.stacks, "archbase2");
    expect(await readdir(stackDir)).toEqual(["bin", "etc", "tmp"]);

    // Make changes in the stack: they land in archbase2/data, the base stays as it was.
    await writeFile(path.join(stackDir, "etc", "group"), "root:x:0:\n");
    await writeFile(
      path.join(stackDir, "etc", "passwd"),
      "root:x:0:0::/root:/bin/sh\njesse:x:1000:1000::/home/jesse:/bin/sh\n",
    );
    await rm(path.join(stackDir, "etc", "motd"));
    const upperEtc = path.join(roots.wafers, "archbase2", "data", "etc");
    expect((await readdir(upperEtc)).sort()).toEqual(["group", "motd", "passwd"]);
    const whiteout = await lstat(path.join(upperEtc, "motd"));
    expect([whiteout.isCharacterDevice(), whiteout.rdev]).toEqual([true, 0]);
    expect(await readFile(path.join(roots.wafers, "archbase", "data", "etc", "passwd"), "utf8")).toBe(
      "root:x:0:0:root:/root:/bin/sh\n",
    );
    expect(await readFile(path.join(upperEtc, "passwd"), "utf8")).toContain("jesse");

    const unstacked = await wafers(["unstack", "archbase2"], roots.env);
    expect([unstacked.status, unstacked.stdout]).toEqual([0, `unstacked ${stackDir}\n`]);
    expect(await mountsUnder(roots.base)).toEqual([]);
    await expect(stat(stackDir)).rejects.toThrow();

    // Restack: the parent is only needed the first time.
    const again = await wafers(["stack", "archbase2"], roots.env);
    expect([again.status, again.stdout]).toEqual([0, `2 wafers stacked at ${stackDir}\n`]);
    expect(await readFile(path.join(stackDir, "etc", "passwd"), "utf8")).toContain("jesse");
    await expect(stat(path.join(stackDir, "etc", "motd"))).rejects.toThrow();

    // A wafer without parents stacks read-write; here under a live child: allowed, with a warning.
    const base = await wafers(["stack", "archbase"], roots.env);
    expect(base.status).toBe(0);
    expect(base.stdout).toBe(`1 wafers stacked at ${roots.stacks}/archbase\n`);
    expect(base.stderr).toContain(`'archbase' is a lower layer of the stack at ${stackDir}`);
    await writeFile(path.join(roots.stacks, "archbase", "rw-test"), "x");
    expect(await readFile(path.join(roots.wafers, "archbase", "data", "rw-test"), "utf8")).toBe("x");
    expect((await wafers(["unstack", "archbase", "archbase2"], roots.env)).status).toBe(0);
    expect(await mountsUnder(roots.base)).toEqual([]);
  });

  it("takes WAFERS/STACKS from --wafers/--stacks too, flags beating the environment", async () => {
    const roots = await wafersRoots(scope);
    await handMadeChain(roots, ["a", "b"]);
    const other = path.join(roots.base, "other-machines");
    const result = await wafers(["--wafers", roots.wafers, "--stacks", other, "stack", "b"], {
      WAFERS: "/nonexistent",
      STACKS: roots.stacks,
    });
    expect([result.status, result.stdout]).toEqual([0, `2 wafers stacked at ${other}/b\n`]);
    expect(await readFile(path.join(other, "b", "layer-0"), "utf8")).toBe("a\n");
    expect((await wafers(["--stacks", other, "unstack", "b"], roots.env)).status).toBe(0);
  });

  it("keeps working on a tree made by hand in the original's layout; list, tree and --json", async () => {
    const roots = await wafersRoots(scope);
    await handMadeChain(roots, ["base", "mid", "top"]);
    const result = await wafers(["stack", "top"], roots.env);
    expect(result.stdout).toBe(`3 wafers stacked at ${roots.stacks}/top\n`);
    expect((await readdir(path.join(roots.stacks, "top"))).sort()).toEqual(["layer-0", "layer-1", "layer-2"]);
    const list = JSON.parse((await wafers(["list", "--json"], roots.env)).stdout) as Array<
      Record<string, unknown>
    >;
    expect(list.map((w) => [w.name, w.parent, w.depth])).toEqual([
      ["base", null, 1],
      ["mid", "base", 2],
      ["top", "mid", 3],
    ]);
    expect(list[2]?.mounts).toEqual([{ path: `${roots.stacks}/top`, kind: "overlay", writable: true }]);
    const tree = await wafers(["tree"], roots.env);
    expect(tree.stdout).toBe(`base\n└── mid\n    └── top  [stacked at ${roots.stacks}/top]\n`);
    expect((await wafers(["unstack", "top"], roots.env)).status).toBe(0);
  });

  it.each([
    ["", "is empty"],
    [".hidden", "starts with a dot"],
    ["..", "is '.' or '..'"],
    ["a..b", "empty label"],
    ["a.", "empty label"],
    ["a/b", "may hold only"],
    ["../escape", "starts with a dot"],
    ["a/../../b", "may hold only"],
    ["x".repeat(65), "longer than 64"],
    ["sp ace", "may hold only"],
  ])("refuses the name %j before creating anything", async (name, reason) => {
    const roots = await wafersRoots(scope);
    await handMadeChain(roots, ["base"]);
    const before = await readdir(roots.base, { recursive: true });
    for (const args of [
      ["stack", name, "base"],
      ["stack", "ok", name],
      ["unstack", name],
    ]) {
      const result = await wafers(args, roots.env);
      expect(result.status, args.join(" ")).toBe(1);
      expect(result.stderr).toContain(reason);
    }
    expect(await readdir(roots.base, { recursive: true })).toEqual(before);
  });

  it("reports cycles, self-parents and missing ancestors clearly, never hanging", async () => {
    const roots = await wafersRoots(scope);
    await handMadeChain(roots, ["a", "b"]);
    await writeFile(path.join(roots.wafers, "a", "parent"), "b\n");
    const cycle = await wafers(["stack", "b"], roots.env);
    expect([cycle.status, cycle.stderr]).toEqual([1, "wafers: ancestry of 'b' has a cycle: b -> a -> b\n"]);
    await handMadeChain(roots, ["self"]);
    await writeFile(path.join(roots.wafers, "self", "parent"), "self\n");
    expect((await wafers(["stack", "self"], roots.env)).stderr).toContain("cycle: self -> self");
    await handMadeChain(roots, ["orphan"]);
    await writeFile(path.join(roots.wafers, "orphan", "parent"), "gone\n");
    expect((await wafers(["stack", "orphan"], roots.env)).stderr).toContain(
      "'orphan' has parent 'gone', which has no data/",
    );
    expect((await wafers(["stack", "new", "gone"], roots.env)).stderr).toContain("'new' has parent 'gone'");
    expect(await readdir(roots.wafers)).not.toContain("new");
    expect((await wafers(["stack", "nothing"], roots.env)).stderr).toContain("wafer 'nothing' not found");
    const list = await wafers(["list"], roots.env);
    expect(list.stdout).toContain("cycle");
    expect(await mountsUnder(roots.base)).toEqual([]);
  });

  it("refuses another parent than the recorded one, also while mounted", async () => {
    const roots = await wafersRoots(scope);
    await handMadeChain(roots, ["a", "b"]);
    await handMadeChain(roots, ["c"]);
    const wrong = await wafers(["stack", "b", "c"], roots.env);
    expect([wrong.status, wrong.stderr]).toEqual([1, "wafers: wafer 'b' has parent 'a', not 'c'\n"]);
    expect((await wafers(["stack", "b", "a"], roots.env)).status).toBe(0);
    const mounted = await wafers(["stack", "b", "c"], roots.env);
    expect([mounted.status, mounted.stderr]).toEqual([1, "wafers: wafer 'b' has parent 'a', not 'c'\n"]);
    expect((await wafers(["stack", "a", "c"], roots.env)).stderr).toContain("exists without a parent");
  });

  it("refuses a stack whose ancestor is live as a writable layer, and mounting a wafer twice", async () => {
    const roots = await wafersRoots(scope);
    await handMadeChain(roots, ["a", "b", "c"]);
    expect((await wafers(["stack", "b"], roots.env)).status).toBe(0);
    const child = await wafers(["stack", "c"], roots.env);
    expect(child.status).toBe(1);
    expect(child.stderr).toContain(
      `ancestor 'b' of 'c' is live as the writable layer of the stack at ${roots.stacks}/b`,
    );
    expect(await readdir(roots.stacks)).toEqual(["b"]);

    const elsewhere = path.join(roots.base, "other");
    const twice = await wafers(["--stacks", elsewhere, "stack", "b"], roots.env);
    expect(twice.status).toBe(1);
    expect(twice.stderr).toContain(`wafer 'b' is already mounted at ${roots.stacks}/b`);
    await expect(stat(path.join(elsewhere, "b"))).rejects.toThrow();

    expect((await wafers(["unstack", "b"], roots.env)).status).toBe(0);
    expect((await wafers(["stack", "a"], roots.env)).status).toBe(0);
    const overBind = await wafers(["stack", "c"], roots.env);
    expect(overBind.stderr).toContain("ancestor 'a' of 'c' is live as the writable layer");
    expect((await wafers(["unstack", "a"], roots.env)).status).toBe(0);
  });

  it("serialises 8 concurrent stacks of one name into exactly one mount", async () => {
    const roots = await wafersRoots(scope);
    await baseWafer(roots);
    const results = await Promise.all(
      Array.from({ length: 8 }, () => wafers(["stack", "archbase2", "archbase"], roots.env)),
    );
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(0));
    expect(results.filter((r) => r.stdout.startsWith("2 wafers stacked"))).toHaveLength(1);
    expect(results.filter((r) => r.stdout.includes("already stacked"))).toHaveLength(7);
    expect(await mountsUnder(roots.base)).toEqual([path.join(roots.stacks, "archbase2")]);
  });

  it("gives a new wafer a fresh machine-id when one exists anywhere below, owned like the parent's root", async () => {
    const roots = await wafersRoots(scope);
    await handMadeChain(roots, ["base", "mid"]);
    await mkdir(path.join(roots.wafers, "base", "data", "etc"));
    await writeFile(
      path.join(roots.wafers, "base", "data", "etc", "machine-id"),
      "0123456789abcdef0123456789abcdef\n",
    );
    await run("chown", ["1234:2345", path.join(roots.wafers, "mid", "data")]);
    const ids = new Set<string>();
    for (const name of ["one", "two"]) {
      expect((await wafers(["stack", name, "mid"], roots.env)).status).toBe(0);
      const file = path.join(roots.wafers, name, "data", "etc", "machine-id");
      const id = (await readFile(file, "utf8")).trim();
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      ids.add(id);
      const data = await stat(path.join(roots.wafers, name, "data"));
      expect([data.uid, data.gid]).toEqual([1234, 2345]);
      expect((await readFile(path.join(roots.stacks, name, "etc", "machine-id"), "utf8")).trim()).toBe(id);
    }
    ids.add("0123456789abcdef0123456789abcdef");
    expect(ids.size).toBe(3);
    // Without one below, none is made.
    await handMadeChain(roots, ["bare"]);
    expect((await wafers(["stack", "plain", "bare"], roots.env)).status).toBe(0);
    await expect(stat(path.join(roots.wafers, "plain", "data", "etc"))).rejects.toThrow();
  });

  it("stacks 200- and 500-layer chains of 60-character names; refuses 501 leaving nothing behind", async () => {
    const roots = await wafersRoots(scope);
    const names = Array.from(
      { length: 502 },
      (_, i) => `layer-${String(i).padStart(3, "0")}-${"x".repeat(50)}`,
    );
    expect(names[0]).toHaveLength(60);
    await handMadeChain(roots, names);
    for (const [depth, top] of [
      [201, names[200]],
      [501, names[500]],
    ] as const) {
      const result = await wafers(["stack", top as string], roots.env);
      expect([result.status, result.stdout, result.stderr]).toEqual([
        0,
        `${depth} wafers stacked at ${roots.stacks}/${top}\n`,
        "",
      ]);
      // The bottom layer shows through every layer above it.
      expect(await readFile(path.join(roots.stacks, top as string, "layer-0"), "utf8")).toBe(`${names[0]}\n`);
      expect((await wafers(["unstack", top as string], roots.env)).status).toBe(0);
    }
    const before = await readdir(roots.base, { recursive: true });
    const tooDeep = await wafers(["stack", names[501] as string], roots.env);
    expect(tooDeep.status).toBe(1);
    expect(tooDeep.stderr).toContain("more than 500 lower layers");
    const fresh = await wafers(["stack", "one-more", names[501] as string], roots.env);
    expect(fresh.stderr).toContain("more than 500 lower layers");
    expect(await readdir(roots.base, { recursive: true })).toEqual(before);
  });

  it("unstack keeps going past a busy stack and a foreign mount, and exits 1", async () => {
    const roots = await wafersRoots(scope);
    await handMadeChain(roots, ["a", "b"]);
    await handMadeChain(roots, ["c", "d"]);
    expect((await wafers(["stack", "b"], roots.env)).status).toBe(0);
    expect((await wafers(["stack", "d"], roots.env)).status).toBe(0);
    const foreign = path.join(roots.stacks, "x");
    await mkdir(foreign);
    await mountTmpfs(scope, foreign);
    // A process with its working directory in b keeps it busy.
    const holder = spawn("sleep", ["600"], { cwd: path.join(roots.stacks, "b"), stdio: "ignore" });
    scope.defer("stop the holder", async () => {
      holder.kill("SIGKILL");
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const result = await wafers(["unstack", "b", "x", "d"], roots.env);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe(`unstacked ${roots.stacks}/d\n`);
    expect(result.stderr).toContain(`wafers: b: ${roots.stacks}/b is busy`);
    expect(result.stderr).toContain(`wafers: x: ${foreign} holds a mount wafers did not make (tmpfs`);
    expect((await mountsUnder(roots.stacks)).sort()).toEqual([`${roots.stacks}/b`, foreign]);
    holder.kill("SIGKILL");
    await new Promise((resolve) => holder.once("exit", resolve));
    expect((await wafers(["unstack", "b"], roots.env)).stdout).toBe(`unstacked ${roots.stacks}/b\n`);
  });

  it("a failed mount leaves no empty mount point behind", async () => {
    const roots = await wafersRoots(scope);
    await handMadeChain(roots, ["a", "b"]);
    // work/ on another filesystem than data/: the kernel refuses the overlay.
    await mountTmpfs(scope, path.join(roots.wafers, "b", "work"));
    const result = await wafers(["stack", "b"], roots.env);
    expect(result.status).toBe(125);
    expect(result.stderr).toContain("cannot mount");
    expect(await readdir(roots.stacks).catch(() => [])).toEqual([]);
  });

  it("a mount point that cannot be made leaves no new wafer behind", async () => {
    const roots = await wafersRoots(scope);
    await handMadeChain(roots, ["a"]);
    // $STACKS is a file: its NAME directory cannot be made.
    await writeFile(roots.stacks, "not a directory\n");
    const result = await wafers(["stack", "new", "a"], roots.env);
    expect(result.status).toBe(125);
    expect(result.stderr).toContain(`cannot stack 'new' at ${roots.stacks}/new`);
    expect((await readdir(roots.wafers)).sort()).toEqual(["a"]);
  });

  it("rm refuses a parent or a mounted wafer, then removes", async () => {
    const roots = await wafersRoots(scope);
    await handMadeChain(roots, ["a", "b"]);
    expect((await wafers(["rm", "a"], roots.env)).stderr).toContain("is the parent of 'b'");
    expect((await wafers(["stack", "b"], roots.env)).status).toBe(0);
    expect((await wafers(["rm", "b"], roots.env)).stderr).toContain(`is mounted at ${roots.stacks}/b`);
    expect((await wafers(["unstack", "b"], roots.env)).status).toBe(0);
    expect((await wafers(["rm", "b"], roots.env)).stdout).toBe("removed wafer b\n");
    expect((await wafers(["rm", "a"], roots.env)).status).toBe(0);
    expect((await readdir(roots.wafers)).filter((n) => !n.startsWith("."))).toEqual([]);
  });

  it("commit writes the wafer's layer with OCI whiteouts and opaque markers that GNU tar reads", async () => {
    const roots = await wafersRoots(scope);
    await baseWafer(roots);
    await mkdir(path.join(roots.wafers, "archbase", "data", "opt", "old"), { recursive: true });
    await writeFile(path.join(roots.wafers, "archbase", "data", "opt", "old", "file"), "old\n");
    expect((await wafers(["stack", "child", "archbase"], roots.env)).status).toBe(0);
    const stackDir = path.join(roots.stacks, "child");
    await rm(path.join(stackDir, "etc", "motd"));
    await rm(path.join(stackDir, "tmp"), { recursive: true });
    // Removing and recreating a directory makes it opaque in the upper layer.
    await rm(path.join(stackDir, "opt"), { recursive: true });
    await mkdir(path.join(stackDir, "opt"));
    await writeFile(path.join(stackDir, "opt", "new"), "new\n");
    await writeFile(path.join(stackDir, "etc", "hosts"), "127.0.0.1 localhost\n");
    await symlink("hosts", path.join(stackDir, "etc", "hosts.link"));
    await run("setfattr", ["-n", "user.note", "-v", "kept", path.join(stackDir, "etc", "hosts")]);
    expect((await wafers(["unstack", "child"], roots.env)).status).toBe(0);

    const out = path.join(roots.base, "child.tar");
    const commit = await wafers(["commit", "child", "-o", out], roots.env);
    expect(commit.status, commit.stderr).toBe(0);
    const listing = (await run("tar", ["-tf", out])).stdout.trim().split("\n");
    expect(listing).toEqual([
      "etc/",
      "etc/hosts",
      "etc/hosts.link",
      "etc/.wh.motd",
      "opt/",
      "opt/.wh..wh..opq",
      "opt/new",
      ".wh.tmp",
    ]);
    const extracted = path.join(roots.base, "extracted");
    await mkdir(extracted);
    await run("tar", ["--xattrs", "--xattrs-include=*", "-xpf", out, "-C", extracted]);
    expect(await readFile(path.join(extracted, "opt", "new"), "utf8")).toBe("new\n");
    expect(
      (await run("getfattr", ["--only-values", "-n", "user.note", path.join(extracted, "etc", "hosts")]))
        .stdout,
    ).toBe("kept");
    // overlayfs' own attributes stay out of the layer.
    const verbose = (await run("tar", ["--xattrs", "-tvvf", out])).stdout;
    expect(verbose).not.toContain("trusted.overlay");
  });
});
