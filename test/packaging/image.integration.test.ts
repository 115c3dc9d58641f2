import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { TOOLS } from "../../src/cli/tools.js";
import { run } from "../../src/system/exec.js";
import { createLoopBtrfs } from "../support/btrfs.js";
import { buildProjectImage } from "../support/debian.js";
import { TEST_LABEL } from "../support/docker.js";
import { htpasswdAtPrompt } from "../support/htpasswd.js";
import { resticClient } from "../support/restic.js";
import { freePort, uniqueId, useScope } from "../support/scope.js";

async function docker(
  args: string[],
  okStatuses = [0],
): Promise<{ stdout: string; stderr: string; status: number }> {
  return run("docker", args, { okStatuses });
}

async function waitForLog(name: string, text: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const logs = await docker(["logs", name]);
    const all = `${logs.stdout}${logs.stderr}`;
    if (all.includes(text)) return all;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${name} never logged ${text}`);
}

describe("the container images built from the project's Dockerfile", () => {
  const scope = useScope();

  it("rest-server behaves like restic/rest-server's image: /data, port 8000, create_user, delete_user, OPTIONS, non-root", {
    timeout: 900_000,
  }, async () => {
    const image = await buildProjectImage({ target: "rest-server" });
    const name = uniqueId("stowage-rest-image");
    const volume = `${name}-data`;
    const port = await freePort();
    await docker([
      "run",
      "-d",
      "--name",
      name,
      "--label",
      TEST_LABEL,
      "-p",
      `127.0.0.1:${port}:8000`,
      "-v",
      `${volume}:/data`,
      "-e",
      "OPTIONS=--prometheus --prometheus-no-auth",
      image,
    ]);
    scope.defer(`remove ${name} and ${volume}`, async () => {
      await docker(["rm", "-f", name], [0, 1]);
      await docker(["volume", "rm", "-f", volume], [0, 1]);
    });
    const logs = await waitForLog(name, "rest-server listening on");
    expect(logs).toContain("No user exists, please 'docker exec -it $CONTAINER_ID create_user'");
    // A new volume belongs to the image's user stowage: the server does not run as root.
    const pid = (await docker(["inspect", "-f", "{{.State.Pid}}", name])).stdout.trim();
    expect(await readFile(`/proc/${pid}/status`, "utf8")).toMatch(/^Uid:\s+10001\s/m);
    // Nothing in the image but the executable, its libraries and bcrypt: no shell, no htpasswd.
    expect((await docker(["exec", name, "/bin/sh", "-c", "true"], [126, 127])).status).not.toBe(0);

    await docker(["exec", name, "create_user", "alice", "alice-pw"]);
    // Password hashes are not world-readable (upstream's #318), and the server's user owns them.
    const listing = await run("bash", [
      "-c",
      `docker cp ${name}:/data/.htpasswd - | tar -tv --numeric-owner -f -`,
    ]);
    expect(listing.stdout).toMatch(/^-rw------- 10001\/10001 /);
    const scratch = await scope.tempDir("stowage-image-htpasswd-");
    const copy = path.join(scratch, "htpasswd");
    await run("bash", ["-c", `docker cp ${name}:/data/.htpasswd - | tar -xO -f - > ${copy}`]);
    expect(await readFile(copy, "utf8")).toMatch(/^alice:\$2y\$05\$/);
    // The line is one Apache's own htpasswd verifies, as well as our server (below).
    await run("htpasswd", ["-v", "-b", copy, "alice", "alice-pw"]);
    expect((await run("htpasswd", ["-v", "-b", copy, "alice", "wrong"], { okStatuses: [3] })).status).toBe(3);
    // As upstream's README has it: `docker exec -it CONTAINER create_user NAME`, asked twice at a terminal.
    await htpasswdAtPrompt(`docker exec -it ${name} create_user bob`, "bob-pw", scratch);
    await run("bash", ["-c", `docker cp ${name}:/data/.htpasswd - | tar -xO -f - > ${copy}`]);
    await run("htpasswd", ["-v", "-b", copy, "bob", "bob-pw"]);
    const source = await scope.tempDir("stowage-image-src-");
    await writeFile(path.join(source, "file"), "through the image\n");
    const restic = await resticClient(scope, `rest:http://alice:alice-pw@127.0.0.1:${port}/alice/`);
    await restic.run(["init"]);
    await restic.run(["backup", source]);
    await restic.run(["check", "--read-data"]);
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(metrics.status).toBe(200);

    await docker(["exec", name, "delete_user", "alice"]);
    // The server notices the edited file within seconds.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const denied = await restic.run(["snapshots"], { okStatuses: [1] });
    expect(denied.stderr).toMatch(/401|unauthorized/i);
  });

  it("DISABLE_AUTHENTICATION serves without users; the umbrella image runs every command's --help", {
    timeout: 900_000,
  }, async () => {
    const restImage = await buildProjectImage({ target: "rest-server" });
    const name = uniqueId("stowage-rest-noauth");
    const port = await freePort();
    await docker([
      "run",
      "-d",
      "--name",
      name,
      "--label",
      TEST_LABEL,
      "-p",
      `127.0.0.1:${port}:8000`,
      "-e",
      "DISABLE_AUTHENTICATION=1",
      restImage,
    ]);
    scope.defer(`remove ${name}`, () => docker(["rm", "-f", "-v", name], [0, 1]));
    await waitForLog(name, "rest-server listening on");
    const restic = await resticClient(scope, `rest:http://127.0.0.1:${port}/open/`);
    await restic.run(["init"]);

    const umbrella = await buildProjectImage({});
    const commands = (await docker(["run", "--rm", umbrella, "--list-commands"])).stdout.trim().split("\n");
    expect(commands).toEqual(
      expect.arrayContaining(["snapshotter", "backrest-sidecar", "statecraft", "wafers", "rest-server"]),
    );
    for (const command of commands) {
      const help = await docker(["run", "--rm", umbrella, command, "--help"]);
      expect(help.stdout, command).toContain(`Usage: ${command}`);
    }
  });
});

/** Decimal megabytes, as `docker images` prints them and the targets are stated. */
const MB = 1_000_000;
const SIZE_LIMIT: Record<string, number> = { "rest-server": 130 * MB, stowage: 250 * MB };

async function imageSize(image: string): Promise<number> {
  return Number((await docker(["image", "inspect", "-f", "{{.Size}}", image])).stdout.trim());
}

/** The image's own answer to which programs it carries, as paths ("coreutils:*" spelled out by ls). */
async function programsIn(image: string, command: string): Promise<string[]> {
  const listed = await docker([
    "run",
    "--rm",
    "--entrypoint",
    "/usr/local/bin/stowage",
    image,
    "--list-programs",
    command,
  ]);
  return listed.stdout
    .trim()
    .split("\n")
    .filter((name) => name !== "" && !name.endsWith(":*"));
}

/** What a container needs for mount(2) here: statecraft and wafers mount inside it. */
const MAY_MOUNT = [
  "--rm",
  "--label",
  TEST_LABEL,
  "--cap-add",
  "SYS_ADMIN",
  "--security-opt",
  "apparmor=unconfined",
];

describe("each command's image: FROM scratch, its programs whole, within its size", () => {
  const scope = useScope();

  it("every command's image and the umbrella carry what their command runs, and nothing breaks loading", {
    timeout: 900_000,
  }, async () => {
    const sizes: string[] = [];
    for (const command of [...TOOLS.map((tool) => tool.name), "stowage"]) {
      const image =
        command === "rest-server"
          ? await buildProjectImage({ target: "rest-server" })
          : await buildProjectImage({ command });
      const size = await imageSize(image);
      sizes.push(`${command} ${(size / MB).toFixed(0)} MB`);
      expect(size, command).toBeLessThanOrEqual(SIZE_LIMIT[command] ?? 150 * MB);
      // No shell where the command runs none: nothing beyond what it needs.
      const programs = await programsIn(image, command);
      if (!programs.includes("sh") && !programs.includes("bash")) {
        expect(
          (await docker(["run", "--rm", "--entrypoint", "/bin/sh", image, "-c", "true"], [125, 126, 127]))
            .status,
        ).not.toBe(0);
      }
      // Each program starts: its libraries are all there (a missing one is the loader's 127).
      for (const program of programs) {
        const started = await docker(["run", "--rm", "--entrypoint", program, image, "--version"], [0, 1, 2]);
        expect(started.stderr, `${program} in ${command}`).not.toMatch(
          /error while loading shared libraries/,
        );
      }
    }
    console.log(`image sizes: ${sizes.join(", ")}`);
  });

  it("statecraft's image runs a backup command over a read-only bind and a btrfs snapshot of the host", {
    timeout: 900_000,
  }, async () => {
    const image = await buildProjectImage({ command: "statecraft" });
    const fs = await createLoopBtrfs(scope);
    await run("btrfs", ["-q", "subvolume", "create", path.join(fs.mountPoint, "@data")]);
    const dir = await scope.tempDir("stowage-image-statecraft-");
    const data = path.join(dir, "data");
    const etc = path.join(dir, "etc");
    const paths = path.join(dir, "paths.d");
    for (const made of [data, etc, paths]) await mkdir(made);
    await run("mount", ["-o", "subvol=@data", fs.devices[0] ?? "", data]);
    scope.defer(`unmount ${data}`, () => run("umount", [data]));
    await writeFile(path.join(data, "file"), "on btrfs\n");
    await writeFile(path.join(etc, "app.conf"), "bound\n");
    // The seed's way of naming paths: links to the shipped state scripts, made with statecraft -e.
    for (const [target, script] of [
      ["/srv/data", "btrfs.sh"],
      ["/etc/app", "bind.sh"],
    ] as const) {
      const name = (await docker(["run", "--rm", image, "-e", target])).stdout.trim();
      await symlink(
        `/usr/local/lib/statecraft/state-scripts/${script}`,
        path.join(paths, `${name}.state.sh`),
      );
    }
    const result = await docker([
      "run",
      ...MAY_MOUNT,
      ...fs.devices.flatMap((device) => ["--device", device]),
      "-v",
      `${paths}:/paths.d:ro`,
      "-v",
      `${data}:/srv/data`,
      "-v",
      `${etc}:/etc/app:ro`,
      image,
      "-p",
      "/paths.d",
      "bash",
      "-c",
      "cat srv/data/file etc/app/app.conf; findmnt -n -o OPTIONS --target srv/data; touch srv/data/new || echo read-only",
    ]);
    expect(result.stdout).toMatch(/\non btrfs\nbound\nro,.*subvol=\/@data_snap-\S+\nread-only\n$/);
    expect(result.stderr).not.toMatch(/command not found|setlocale/);
    // The snapshot is gone again.
    const subvolumes = await run("btrfs", ["subvolume", "list", fs.mountPoint]);
    expect(subvolumes.stdout.trim().split("\n")).toHaveLength(1);
  });

  it("the umbrella image stacks wafers on overlayfs and commits a layer GNU tar reads with its xattrs", {
    timeout: 900_000,
  }, async () => {
    const image = await buildProjectImage({});
    const out = await scope.tempDir("stowage-image-wafers-");
    await docker([
      "run",
      ...MAY_MOUNT,
      "--tmpfs",
      "/w",
      "-v",
      `${out}:/out`,
      "-e",
      "WAFERS=/w/wafers",
      "-e",
      "STACKS=/w/stacks",
      "--entrypoint",
      "bash",
      image,
      "-c",
      [
        "set -e",
        "mkdir -p /w/wafers/base/data && echo base > /w/wafers/base/data/old",
        "wafers stack app base",
        "rm /w/stacks/app/old && echo app > /w/stacks/app/new && setfattr -n user.origin -v app /w/stacks/app/new",
        "wafers unstack app",
        "wafers commit app -o /out/app.tar",
      ].join("\n"),
    ]);
    const listing = await run("tar", ["--xattrs", "-tvf", path.join(out, "app.tar")]);
    expect(listing.stdout).toMatch(/ \.wh\.old\n/);
    const extracted = path.join(out, "x");
    await mkdir(extracted);
    await run("tar", [
      "--xattrs",
      "--xattrs-include=user.*",
      "-xf",
      path.join(out, "app.tar"),
      "-C",
      extracted,
    ]);
    expect(await readFile(path.join(extracted, "new"), "utf8")).toBe("app\n");
    const xattr = await run("getfattr", ["--only-values", "-n", "user.origin", path.join(extracted, "new")]);
    expect(xattr.stdout).toBe("app");
  });
});
