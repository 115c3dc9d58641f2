import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { readMountinfo } from "../../src/system/mountinfo.js";
import { createLoopBtrfs } from "./btrfs.js";
import { containerOutput, createTestContainer, dockerClient, TEST_LABEL } from "./docker.js";
import { resticClient } from "./restic.js";
import { useScope } from "./scope.js";

// Proves each piece of the real-host harness works, so tool tests can rely on it.
describe("real-host harness", () => {
  const scope = useScope();

  it("makes a loop-device btrfs that takes read-only snapshots, and removes it", async () => {
    const fs = await createLoopBtrfs(scope, { devices: 2 });
    const entry = (await readMountinfo()).find((m) => m.mountPoint === fs.mountPoint);
    expect(entry?.fsType).toBe("btrfs");
    expect(fs.devices).toHaveLength(2);

    await run("btrfs", ["subvolume", "create", path.join(fs.mountPoint, "@data")]);
    await writeFile(path.join(fs.mountPoint, "@data", "file"), "before");
    await run("btrfs", [
      "subvolume",
      "snapshot",
      "-r",
      path.join(fs.mountPoint, "@data"),
      path.join(fs.mountPoint, "snap"),
    ]);
    await writeFile(path.join(fs.mountPoint, "@data", "file"), "after");
    expect(await readFile(path.join(fs.mountPoint, "snap", "file"), "utf8")).toBe("before");
    await expect(writeFile(path.join(fs.mountPoint, "snap", "other"), "x")).rejects.toMatchObject({
      code: "EROFS",
    });

    await scope.cleanup();
    expect((await readMountinfo()).some((m) => m.mountPoint === fs.mountPoint)).toBe(false);
    const loops = (await run("losetup", ["--list", "--noheadings", "--output", "NAME"])).stdout;
    for (const device of fs.devices) expect(loops).not.toContain(device);
  });

  it("runs a container from the locally built image and removes it", async () => {
    const container = await createTestContainer(scope, { Cmd: ["sh", "-c", "echo harness-ok"] });
    await container.start();
    const result = (await container.wait()) as { StatusCode: number };
    expect(result.StatusCode).toBe(0);
    expect(await containerOutput(container)).toBe("harness-ok\n");

    await scope.cleanup();
    const left = await dockerClient().listContainers({ all: true, filters: { id: [container.id] } });
    expect(left).toHaveLength(0);
    expect(TEST_LABEL).toBe("io.stowage.test");
  });

  it("drives the real restic client against a local repository", async () => {
    const dir = await scope.tempDir();
    const source = path.join(dir, "source");
    await mkdir(source);
    await writeFile(path.join(source, "hello.txt"), "hello restic\n");
    const restic = await resticClient(scope, path.join(dir, "repo"));
    await restic.run(["init"]);
    await restic.run(["backup", "--host", "harness", source]);
    const snapshots = await restic.json<Array<{ paths: string[] }>>(["snapshots"]);
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]?.paths).toEqual([source]);
    const dump = await restic.run(["dump", "latest", path.join(source, "hello.txt")]);
    expect(dump.stdout).toBe("hello restic\n");
  });
});
