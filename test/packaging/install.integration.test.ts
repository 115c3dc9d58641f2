import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { debianRoot, ROOT } from "../support/debian.js";
import { htpasswdFile } from "../support/htpasswd.js";
import { resticClient } from "../support/restic.js";
import { freePort, useScope } from "../support/scope.js";

describe("the self-contained executable on a Debian root without Node.js", () => {
  const scope = useScope();

  it("make install, then seed 000's lines, a statecraft run and rest-server serving the host's restic, in a chroot", {
    timeout: 900_000,
  }, async () => {
    const base = await debianRoot();
    // A private writable copy of the cached root: an overlay over it.
    const dir = await scope.tempDir("stowage-chroot-");
    const [upper, work, target] = ["upper", "work", "root"].map((name) => path.join(dir, name)) as [
      string,
      string,
      string,
    ];
    for (const d of [upper, work, target]) await mkdir(d);
    await run("mount", [
      "-t",
      "overlay",
      "-o",
      `lowerdir=${base},upperdir=${upper},workdir=${work}`,
      "stowage-chroot",
      target,
    ]);
    scope.defer(`unmount ${target}`, () => run("umount", ["--recursive", "--lazy", target]));
    const chroot = (script: string) =>
      run("chroot", [target, "/bin/bash", "-c", script], {
        env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
      });
    expect((await chroot("command -v node || echo none")).stdout.trim()).toBe("none");

    await run("make", ["-C", ROOT, "install", `DESTDIR=${target}`, "PREFIX=/usr/local"]);
    await run("mount", ["-t", "proc", "proc", path.join(target, "proc")]);
    await run("mount", ["--rbind", "/dev", path.join(target, "dev")]);
    await run("mount", ["--make-rslave", path.join(target, "dev")]);
    expect((await chroot("statecraft --version")).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    for (const command of [
      "stowage",
      "statecraft",
      "snapshotter",
      "rest-server",
      "wafers",
      "backrest-sidecar",
    ]) {
      const help = await run("chroot", [target, `/usr/local/bin/${command}`, "--help"], { okStatuses: [0] });
      expect(help.stdout, command).toContain("Usage:");
    }

    // Seed 000, verbatim (the paths.d directory made first).
    const seed = [
      "mkdir -p /etc/backup/paths.d",
      'ln -s "/usr/local/lib/statecraft/state-scripts/bind.sh" "/etc/backup/paths.d/$(statecraft -e "/etc").state.sh"',
      'ln -s "/usr/local/lib/statecraft/state-scripts/btrfs.sh" "/etc/backup/paths.d/$(statecraft -e "/var").state.sh"',
      'ln -s "/usr/local/lib/statecraft/state-scripts/btrfs.sh" "/etc/backup/paths.d/$(statecraft -e "/srv").state.sh"',
      'ln -s "/usr/local/lib/statecraft/state-scripts/btrfs.sh" "/etc/backup/paths.d/$(statecraft -e "/srv/containers/foo").state.sh"',
      'ln -s "/usr/local/lib/statecraft/state-scripts/btrfs.sh" "/etc/backup/paths.d/$(statecraft -e "/srv/containers/bar").state.sh"',
      'ln -s "/usr/local/lib/statecraft/state-scripts/fcos-release.sh" "/etc/backup/paths.d/$(statecraft -e "/fcos-release.json").state.sh"',
      'touch "/etc/backup/paths.d/$(statecraft -e "/podman-containers.json").state.sh"',
    ].join("\n");
    await chroot(seed);
    expect((await readdir(path.join(target, "etc/backup/paths.d"))).sort()).toEqual([
      "etc.state.sh",
      "fcos\\x2drelease.json.state.sh",
      "podman\\x2dcontainers.json.state.sh",
      "srv-containers-bar.state.sh",
      "srv-containers-foo.state.sh",
      "srv.state.sh",
      "var.state.sh",
    ]);
    // A run over a read-only bind of /etc (the btrfs paths need btrfs mounts this root lacks).
    await chroot(
      'mkdir -p /etc/backup/bind.d && ln -s /usr/local/lib/statecraft/state-scripts/bind.sh "/etc/backup/bind.d/$(statecraft -e /etc).state.sh"',
    );
    const state = await chroot(
      "echo chrooted > /etc/marker && statecraft -q -p /etc/backup/bind.d -- sh -c 'cat ./etc/marker; touch ./etc/new 2>/dev/null && echo writable || echo read-only'",
    );
    expect(state.stdout).toBe("chrooted\nread-only\n");

    // rest-server from the installed executable; the host's restic backs up to it and restores.
    await mkdir(path.join(target, "srv/restic"), { recursive: true });
    await htpasswdFile(path.join(target, "srv/restic/.htpasswd"), [["alice", "alice-pw", { bcrypt: 10 }]]);
    const port = await freePort();
    const server = spawn(
      "chroot",
      [target, "/usr/local/bin/rest-server", "--path", "/srv/restic", "--listen", `127.0.0.1:${port}`],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    scope.defer("stop the chrooted rest-server", async () => {
      if (server.exitCode === null) {
        server.kill("SIGTERM");
        await once(server, "exit");
      }
    });
    let output = "";
    server.stdout.on("data", (c: Buffer) => {
      output += c.toString();
    });
    server.stderr.on("data", (c: Buffer) => {
      output += c.toString();
    });
    for (let i = 0; i < 100 && !output.includes("listening on"); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(output).toContain(`rest-server listening on http://127.0.0.1:${port}`);
    expect(output).not.toContain("bcryptjs");
    const source = await scope.tempDir("stowage-chroot-src-");
    await writeFile(path.join(source, "file"), "backed up through the installed rest-server\n");
    const restic = await resticClient(scope, `rest:http://alice:alice-pw@127.0.0.1:${port}/alice/`);
    await restic.run(["init"]);
    await restic.run(["backup", source]);
    await restic.run(["check", "--read-data"]);
    const restored = await scope.tempDir("stowage-chroot-restore-");
    await restic.run(["restore", "latest", "--target", restored]);
    expect((await run("cat", [path.join(restored, source, "file")])).stdout).toBe(
      "backed up through the installed rest-server\n",
    );
    server.kill("SIGTERM");
    expect((await once(server, "exit"))[0]).toBe(0);

    await run("umount", ["--recursive", "--lazy", path.join(target, "dev")]);
    await run("umount", [path.join(target, "proc")]);
    await run("make", ["-C", ROOT, "uninstall", `DESTDIR=${target}`, "PREFIX=/usr/local"]);
    expect((await chroot("ls /usr/local/bin /usr/local/lib")).stdout.trim()).toBe(
      "/usr/local/bin:\n\n/usr/local/lib:",
    );
  });
});
