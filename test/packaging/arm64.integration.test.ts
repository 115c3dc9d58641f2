import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { describeTree, fidelityTree, sameTree } from "../snapshotter/harness.js";
import { ROOT } from "../support/debian.js";
import { gnuTarExtractAll } from "../support/gnu-tar.js";
import { requireHost } from "../support/host.js";
import { htpasswdFile } from "../support/htpasswd.js";
import { resticClient } from "../support/restic.js";
import { freePort, useScope } from "../support/scope.js";

const QEMU = "qemu-aarch64-static";
const EXE = path.join(ROOT, "dist/stowage-linux-arm64");

/**
 * The arm64 executable (seed 002's Raspberry Pi 4) on this x64 machine, under qemu-user, from a
 * `make install ARCH=arm64` tree. `npm test` builds it (`npm run dist -- --arch arm64`).
 */
describe("the arm64 executable under qemu-user", () => {
  const scope = useScope();

  it("installs with make ARCH=arm64; every command answers; rest-server serves restic with native bcrypt; snapshotter agrees with GNU tar", {
    timeout: 600_000,
  }, async () => {
    requireHost({ commands: [QEMU, "htpasswd", "restic", "tar"] });
    if (!existsSync(EXE))
      throw new Error(`${EXE} is missing: run 'npm run dist -- --arch arm64' (npm test does)`);
    // ELF e_machine 183: AArch64.
    expect((await readFile(EXE)).readUInt16LE(18)).toBe(183);
    const dest = await scope.tempDir("stowage-arm64-root-");
    await run("make", ["-C", ROOT, "install", "ARCH=arm64", `DESTDIR=${dest}`, "PREFIX=/usr/local"]);
    const bin = path.join(dest, "usr/local/bin");
    const emulated = (command: string, args: string[], okStatuses = [0]) =>
      run(QEMU, [path.join(bin, command), ...args], { okStatuses });

    const { version } = JSON.parse(await readFile(path.join(ROOT, "package.json"), "utf8"));
    expect((await emulated("stowage", ["--version"])).stdout.trim()).toBe(version);
    const commands = (await emulated("stowage", ["--list-commands"])).stdout.trim().split("\n");
    expect(commands).toEqual(["statecraft", "snapshotter", "rest-server", "wafers", "backrest-sidecar"]);
    for (const command of ["stowage", ...commands]) {
      expect((await emulated(command, ["--help"])).stdout, command).toContain("Usage:");
    }
    expect((await emulated("statecraft", ["-e", "/etc"])).stdout.trim()).toBe("etc");
    expect((await emulated("statecraft", ["-e", "/fcos-release.json"])).stdout.trim()).toBe(
      "fcos\\x2drelease.json",
    );

    // rest-server from the installed tree; the host's restic with a login made by htpasswd -B.
    const data = await scope.tempDir("stowage-arm64-rest-");
    await htpasswdFile(path.join(data, ".htpasswd"), [["pi", "pi-password", { bcrypt: 10 }]]);
    const port = await freePort();
    const server = spawn(
      QEMU,
      [path.join(bin, "rest-server"), "--path", data, "--listen", `127.0.0.1:${port}`],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    scope.defer("stop the arm64 rest-server", async () => {
      if (server.exitCode === null) {
        server.kill("SIGTERM");
        await once(server, "exit");
      }
    });
    let output = "";
    for (const stream of [server.stdout, server.stderr]) stream.on("data", (c: Buffer) => (output += c));
    for (let i = 0; i < 600 && !output.includes("start server on"); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(output).toContain(`start server on 127.0.0.1:${port}`);
    const source = await scope.tempDir("stowage-arm64-src-");
    await writeFile(path.join(source, "notes.txt"), "backed up to a Raspberry Pi\n");
    await writeFile(path.join(source, "random.bin"), Buffer.alloc(3 * 1024 * 1024, 0x5a));
    const restic = await resticClient(scope, `rest:http://pi:pi-password@127.0.0.1:${port}/pi/`);
    await restic.run(["init"]);
    await restic.run(["backup", source]);
    await restic.run(["check", "--read-data"]);
    const restored = await scope.tempDir("stowage-arm64-restore-");
    await restic.run(["restore", "latest", "--target", restored]);
    await run("diff", ["-r", source, path.join(restored, source)]);
    // The arm64 bcrypt addon installed beside the executable is mapped into the emulated process;
    // the bcryptjs fallback would have said so in the log.
    const maps = await readFile(`/proc/${server.pid}/maps`, "utf8");
    expect(maps).toContain(path.join(dest, "usr/local/lib/stowage/bcrypt.node"));
    expect(output).not.toContain("bcryptjs");
    server.kill("SIGTERM");
    expect((await once(server, "exit"))[0]).toBe(0);

    // snapshotter: a tree of every kind of file, backed up, checked by GNU tar, restored.
    const work = await scope.tempDir("stowage-arm64-snap-");
    const volume = path.join(work, "volume");
    await mkdir(volume);
    await fidelityTree(volume);
    const before = await describeTree(volume);
    const config = path.join(work, "config.yml");
    await writeFile(config, `prefix: volumes/pi\nvolumes:\n  - ${volume}\n`);
    const archive = path.join(work, "backup.tar");
    await emulated("snapshotter", ["init", archive]);
    await emulated("snapshotter", ["backup", "--config", config, "--archive", archive]);
    const extracted = path.join(work, "gnu-tar");
    await gnuTarExtractAll(archive, extracted);
    const members = (await run("tar", ["-tf", archive])).stdout.trim().split("\n");
    const top = members.find((member) => /^volumes\/pi\/[0-9a-f]{64}\/$/.test(member));
    expect(top, members.join("\n")).toBeDefined();
    expect(sameTree(await describeTree(path.join(extracted, top as string)), before)).toEqual(before);
    await writeFile(path.join(volume, "nested", "deeper", "data.bin"), "changed after the backup\n");
    await writeFile(path.join(volume, "not-in-backup"), "removed by restore\n");
    await emulated("snapshotter", ["restore", "--config", config, "--archive", archive]);
    expect(sameTree(await describeTree(volume), before)).toEqual(before);
  });
});
