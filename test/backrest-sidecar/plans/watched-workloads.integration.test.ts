import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { WatchedWorkloads } from "../../../src/backrest-sidecar/plans/watched-workloads.js";
import { listWorkloads } from "../../../src/backrest-sidecar/workloads/discover.js";
import { dockerClient as engineAt } from "../../../src/system/docker.js";
import { run } from "../../../src/system/exec.js";
import { dockerClient, ensureTestImage, TEST_LABEL } from "../../support/docker.js";
import { type TestScope, useScope } from "../../support/scope.js";

/** A container made with the docker CLI, removed with the test. */
async function dockerCreate(scope: TestScope, name: string, labels: string[], volume: string) {
  const image = await ensureTestImage(scope);
  const args = ["create", "--name", name, "--network", "none", "--label", `${TEST_LABEL}=1`];
  for (const label of labels) args.push("--label", label);
  const id = (await run("docker", [...args, "-v", `${volume}:/data`, image, "sleep", "3600"])).stdout.trim();
  scope.defer(`remove container ${name}`, () =>
    run("docker", ["rm", "-f", "-v", id], { okStatuses: [0, 1] }).then(() => {}),
  );
  return id;
}

describe("the daemon's workloads kept up by events (real engine)", () => {
  const scope = useScope();

  it("a container named by an event is looked at again; the result is what listing the engine gives", async () => {
    const docker = dockerClient();
    const tag = randomBytes(4).toString("hex");
    const filter = ["backrest.enable=true", `io.stowage.test.watch=${tag}`];
    const labels = ["backrest.enable=true", `io.stowage.test.watch=${tag}`];
    const dir = await scope.tempDir("stowage-watch-");
    const watched = new WatchedWorkloads(docker, filter);
    const listed = () => listWorkloads(docker, filter);

    const a = await dockerCreate(scope, `stw-watch-a-${tag}`, labels, dir);
    expect((await watched.current()).map((w) => w.id)).toEqual([a]);

    // Made after the listing: known only once an event names it (an unlabelled one never).
    const b = await dockerCreate(scope, `stw-watch-b-${tag}`, labels, `stw-watch-vol-${tag}`);
    scope.defer(`remove volume stw-watch-vol-${tag}`, () =>
      run("docker", ["volume", "rm", "-f", `stw-watch-vol-${tag}`], { okStatuses: [0, 1] }),
    );
    const c = await dockerCreate(scope, `stw-watch-c-${tag}`, [`io.stowage.test.watch=${tag}`], dir);
    expect((await watched.current()).map((w) => w.id)).toEqual([a]);
    watched.note(b);
    watched.note(c);
    expect(await watched.current()).toEqual(await listed());
    expect((await watched.current()).map((w) => w.id)).toEqual([a, b]);

    // Renamed, removed: as the engine lists them after.
    await run("docker", ["rename", `stw-watch-a-${tag}`, `stw-watch-z-${tag}`]);
    await run("docker", ["rm", "-f", "-v", b]);
    watched.note(a);
    watched.note(b);
    expect(await watched.current()).toEqual(await listed());
    expect((await watched.current()).map((w) => w.name)).toEqual([`stw-watch-z-${tag}`]);

    // forget(): the engine is listed whole again (a container no event named shows up).
    const d = await dockerCreate(scope, `stw-watch-d-${tag}`, labels, dir);
    watched.forget();
    expect((await watched.current()).map((w) => w.id)).toEqual([d, a]);
  });

  it("an engine that does not answer: the call fails naming it, and nothing stale is kept", async () => {
    const socket = `${await scope.tempDir("stowage-watch-")}/none.sock`;
    const watched = new WatchedWorkloads(engineAt(socket), ["backrest.enable=true"]);
    await expect(watched.current()).rejects.toThrow(/list containers/);
    watched.note("0".repeat(64));
    await expect(watched.current()).rejects.toThrow(/list containers/);
  });
});
