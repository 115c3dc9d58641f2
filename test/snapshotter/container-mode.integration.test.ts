import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { buildProjectImage } from "../support/debian.js";
import { ensureTestImage, TEST_LABEL } from "../support/docker.js";
import { uniqueId, useScope } from "../support/scope.js";
import { describeTree, sameTree, sha256, snapshotter } from "./harness.js";

describe("snapshotter in a container, as seed 001 runs it (image from the project's Dockerfile)", () => {
  const scope = useScope();

  it("backs up and restores busy_lewin with the seed's docker run lines, verbatim", {
    timeout: 900_000,
  }, async () => {
    const image = await buildProjectImage({ command: "snapshotter" });
    const busybox = await ensureTestImage(scope);
    const dir = await scope.tempDir("stowage-snap-ctr-");
    const volumes = path.join(dir, "test-volumes");
    await mkdir(path.join(volumes, "volume1"), { recursive: true });
    await mkdir(path.join(volumes, "volume3"), { recursive: true });
    await writeFile(path.join(volumes, "volume1", "file.txt"), "one\n");
    await writeFile(path.join(volumes, "volume2.txt"), "two\n");
    await writeFile(path.join(volumes, "volume3", "file.txt"), "three\n");
    const name = uniqueId("busy_lewin");
    // The seed's container, with busybox's ls in place of tree.
    const sh = (line: string) => run("sh", ["-c", line], { cwd: dir });
    await sh(
      `docker run --name ${name} --label ${TEST_LABEL} ` +
        "-v $(pwd)/test-volumes/volume1:/home/volume1 -v $(pwd)/test-volumes/volume2.txt:/home/volume2.txt " +
        `-v $(pwd)/test-volumes/volume3:/home/volume3 ${busybox} ls /home`,
    );
    scope.defer(`remove container ${name}`, () => run("docker", ["rm", "-f", name]));
    await writeFile(
      path.join(dir, "config.yml"),
      'prefix: "volumes/busy_lewin"\nvolumes:\n  - /home/volume1\n  - /home/volume2.txt\n  - /home/volume3\n',
    );
    await sh("dd if=/dev/zero of=backup.tar bs=512 count=2");
    const seedLine = (command: string) =>
      `docker run \\\n  --rm \\\n  --volumes-from ${name} \\\n  -v $(pwd)/backup.tar:/backup.tar \\\n` +
      `  -v $(pwd)/config.yml:/config.yml \\\n  ${image} ${command}`;

    const saved = await sh(seedLine("backup"));
    expect(saved.stdout).toContain("3 volume(s) under volumes/busy_lewin appended to /backup.tar");
    const listed = (await run("tar", ["-tf", path.join(dir, "backup.tar")])).stdout.trim().split("\n");
    expect(listed).toContain(`volumes/busy_lewin/${sha256("/home/volume2.txt")}`);
    expect(listed.at(-1)).toBe("volumes/busy_lewin/volumes-data.yml");
    const before = await describeTree(volumes);

    await writeFile(path.join(volumes, "volume1", "file.txt"), "changed\n");
    await writeFile(path.join(volumes, "volume2.txt"), "changed\n");
    await rm(path.join(volumes, "volume3", "file.txt"));
    const restored = await sh(seedLine("restore"));
    expect(restored.stdout).toContain("restored /home/volume1 (dir, 2 entries) into /home/volume1");
    expect(sameTree(await describeTree(volumes), before)).toEqual(before);

    // A second backup: /backup.tar is a bind-mounted file, so it is appended and supersedes.
    await writeFile(path.join(volumes, "volume1", "file.txt"), "second\n");
    const again = await sh(seedLine("backup"));
    expect(again.stdout).toContain("cannot be rewritten");
    const list = await snapshotter(["list", "--archive", path.join(dir, "backup.tar")]);
    expect(list.stdout).toContain("superseded");
    // The host's tool compacts the plain file, and restores the container-mode archive in host mode.
    expect((await snapshotter(["compact", "--archive", path.join(dir, "backup.tar")])).status).toBe(0);
    await writeFile(path.join(volumes, "volume1", "file.txt"), "garbage\n");
    const host = await snapshotter([
      "restore",
      "--container",
      name,
      "--prefix",
      "volumes/busy_lewin",
      "--archive",
      path.join(dir, "backup.tar"),
    ]);
    expect(host.status, host.stderr).toBe(0);
    expect(await readFile(path.join(volumes, "volume1", "file.txt"), "utf8")).toBe("second\n");
  });
});
