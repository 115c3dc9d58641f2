import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
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
