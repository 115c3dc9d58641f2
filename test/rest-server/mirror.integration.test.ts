import { cp } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { type ResticClient, resticClient, restoredDiff } from "../support/restic.js";
import { cephS3, listKeys, ownGateway, s3Client, testBucket } from "../support/s3.js";
import { freePort, useScope } from "../support/scope.js";
import { addRandom, metric, mirrored, mirroredServer, randomTree, verifiedClean } from "./mirror.js";
import { spawnServer } from "./process.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * While `busy` runs, check the mirror's repository with `check --read-data` at random moments
 * (once it has a config): every check must pass. Returns how many ran.
 */
async function checkedWhile(mirror: ResticClient, busy: Promise<unknown>, hasConfig: () => Promise<boolean>) {
  let done = false;
  const finished = busy.finally(() => {
    done = true;
  });
  let checks = 0;
  while (!done) {
    await sleep(300 + Math.random() * 1200);
    if (!(await hasConfig())) continue;
    const result = await mirror.run(["check", "--read-data"], { okStatuses: [0, 1] });
    expect(result.stderr + result.stdout, "check of the mirror mid-copy").toContain("no errors were found");
    expect(result.status).toBe(0);
    checks++;
  }
  await finished;
  return checks;
}

async function backups(restic: ResticClient, source: string, rounds: number, megabytes: number) {
  for (let round = 0; round < rounds; round++) {
    await addRandom(source, `round-${round}-${Date.now()}`, megabytes);
    await restic.run(["backup", source]);
  }
}

describe("rest-server --mirror: a live off-site copy that is a valid repository at every instant", () => {
  const scope = useScope();

  it("fs primary, S3 mirror on RGW: checks of the mirror pass mid-copy; RGW stopped and restarted during backups, the queue catches up", async () => {
    const ceph = cephS3();
    const gateway = await ownGateway(scope, await freePort());
    const bucket = testBucket(scope);
    const primary = await scope.tempDir("stowage-mirror-primary-");
    const mirrorFlags = ["--mirror", `s3://${bucket}/m`, "--mirror-s3-endpoint", gateway.endpoint];
    const server = await mirroredServer(scope, [], mirrorFlags, {
      path: primary,
      extra: ["--mirror-lag-warn", "1"],
      env: ceph.env,
    });
    const restic = await resticClient(scope, `rest:${server.url}/r/`);
    const onMirror = await resticClient(scope, `s3:${gateway.endpoint}/${bucket}/m/r`, { env: ceph.env });
    await restic.run(["init"]);
    const source = await randomTree(scope, 8);
    const hasConfig = async () => (await listKeys(s3Client(), bucket, "m/r/config")).length > 0;

    const checks = await checkedWhile(onMirror, backups(restic, source, 4, 24), hasConfig);
    expect(checks).toBeGreaterThanOrEqual(2);
    await mirrored(server.url);
    await onMirror.run(["check", "--read-data"]);
    expect(await onMirror.json<unknown[]>(["snapshots"])).toHaveLength(4);

    // The mirror's gateway hangs (SIGSTOP): backups go on as before, the queue grows and says so.
    gateway.pause();
    const started = Date.now();
    await backups(restic, source, 2, 16);
    const pausedBackups = Date.now() - started;
    expect(await metric(server.url, "rest_server_mirror_queue_objects")).toBeGreaterThan(0);
    for (let i = 0; i < 50 && !server.output().includes('"action":"mirror.lagging"'); i++) await sleep(200);
    expect(server.output()).toContain('"action":"mirror.lagging"');
    expect(await metric(server.url, "rest_server_mirror_queue_oldest_seconds")).toBeGreaterThan(1);
    gateway.resume();
    // And restarted while the queue catches up.
    await gateway.restart(1500);
    await backups(restic, source, 1, 8);
    await mirrored(server.url, 180_000);
    for (let i = 0; i < 50 && !server.output().includes('"action":"mirror.caught-up"'); i++) await sleep(200);
    expect(server.output()).toContain('"action":"mirror.caught-up"');
    expect(pausedBackups).toBeLessThan(60_000);

    await onMirror.run(["check", "--read-data"]);
    expect(await onMirror.json<unknown[]>(["snapshots"])).toHaveLength(7);
    expect(await restoredDiff(scope, onMirror, source)).toBe("");
    await verifiedClean(["--path", primary, ...mirrorFlags], ceph.env);
  });

  it("S3 primary, fs mirror: checks of the mirror pass mid-copy; restore from the mirror with restic's local backend and through a second server", async () => {
    const ceph = cephS3();
    const bucket = testBucket(scope);
    const mirrorDir = await scope.tempDir("stowage-mirror-fs-");
    const storage = ["--storage", `s3://${bucket}/p`, "--s3-endpoint", ceph.endpoint];
    const server = await mirroredServer(scope, storage, ["--mirror", mirrorDir], { env: ceph.env });
    const restic = await resticClient(scope, `rest:${server.url}/alice/laptop/`);
    const onMirror = await resticClient(scope, path.join(mirrorDir, "alice/laptop"));
    await restic.run(["init"]);
    const source = await randomTree(scope, 4);
    const hasConfig = () =>
      run("test", ["-f", path.join(mirrorDir, "alice/laptop/config")], { okStatuses: [0, 1] }).then(
        (result) => result.status === 0,
      );
    const checks = await checkedWhile(onMirror, backups(restic, source, 4, 24), hasConfig);
    expect(checks).toBeGreaterThanOrEqual(2);
    await mirrored(server.url);
    await onMirror.run(["check", "--read-data"]);
    expect(await restoredDiff(scope, onMirror, source)).toBe("");
    // A second rest-server on the mirror serves it as it is.
    const second = await spawnServer(scope, [
      "--path",
      mirrorDir,
      "--no-auth",
      "--listen",
      `127.0.0.1:${await freePort()}`,
    ]);
    const throughSecond = await resticClient(scope, `rest:${second.url}/alice/laptop/`);
    expect(await restoredDiff(scope, throughSecond, source)).toBe("");
    await verifiedClean([...storage, "--mirror", mirrorDir], ceph.env);
  });

  it("kill -9 with a full queue, and again while it catches up: nothing acknowledged is missing after restarts", async () => {
    const ceph = cephS3();
    const gateway = await ownGateway(scope, await freePort());
    const bucket = testBucket(scope);
    const primary = await scope.tempDir("stowage-mirror-primary-");
    const mirrorFlags = ["--mirror", `s3://${bucket}/m`, "--mirror-s3-endpoint", gateway.endpoint];
    const start = () => mirroredServer(scope, [], mirrorFlags, { path: primary, env: ceph.env });
    let server = await start();
    const repo = (url: string) => resticClient(scope, `rest:${url}/r/`);
    await (await repo(server.url)).run(["init"]);
    const source = await randomTree(scope, 4);

    gateway.pause();
    await backups(await repo(server.url), source, 3, 16);
    const queued = await metric(server.url, "rest_server_mirror_queue_objects");
    expect(queued).toBeGreaterThan(5);
    expect(await server.stop("SIGKILL")).toBe("SIGKILL");
    gateway.resume();

    server = await start();
    expect(server.output()).toMatch(/"action":"mirror.resume","queued":\d+/);
    // Killed again as soon as it is copying.
    for (let i = 0; i < 100 && (await metric(server.url, "rest_server_mirror_queue_objects")) >= queued; i++)
      await sleep(20);
    expect(await server.stop("SIGKILL")).toBe("SIGKILL");
    server = await start();
    await mirrored(server.url);
    await verifiedClean(["--path", primary, ...mirrorFlags], ceph.env);
    const onMirror = await resticClient(scope, `s3:${gateway.endpoint}/${bucket}/m/r`, { env: ceph.env });
    await onMirror.run(["check", "--read-data"]);
    expect(await onMirror.json<unknown[]>(["snapshots"])).toHaveLength(3);
  });

  it("a client's forget --prune: the mirror keeps the old snapshot and restores it; --mirror-deletes-after makes it follow", async () => {
    const scenario = async (extra: string[]) => {
      const primary = await scope.tempDir("stowage-mirror-primary-");
      const mirrorDir = await scope.tempDir("stowage-mirror-fs-");
      const server = await mirroredServer(scope, [], ["--mirror", mirrorDir, ...extra], { path: primary });
      const restic = await resticClient(scope, `rest:${server.url}/r/`);
      const onMirror = await resticClient(scope, path.join(mirrorDir, "r"));
      await restic.run(["init"]);
      const source = await randomTree(scope, 6);
      await restic.run(["backup", source]);
      const firstState = await scope.tempDir("stowage-mirror-first-");
      await cp(source, firstState, { recursive: true });
      const [first] = await restic.json<Array<{ id: string }>>(["snapshots"]);
      await run("rm", ["-r", path.join(source, "first")]);
      await addRandom(source, "second", 6);
      await restic.run(["backup", source]);
      await restic.run(["forget", (first as { id: string }).id, "--prune"]);
      await mirrored(server.url);
      return {
        server,
        restic,
        onMirror,
        source,
        firstState,
        firstId: (first as { id: string }).id,
        primary,
        mirrorDir,
      };
    };
    const packs = async (repo: string) =>
      (await run("find", [path.join(repo, "data"), "-type", "f"])).stdout.split("\n").filter(Boolean).length;

    // Default: the mirror keeps everything the primary lost.
    const kept = await scenario([]);
    expect(await kept.restic.json<unknown[]>(["snapshots"])).toHaveLength(1);
    expect(await kept.onMirror.json<unknown[]>(["snapshots"])).toHaveLength(2);
    await kept.onMirror.run(["check", "--read-data"]);
    const target = await scope.tempDir("stowage-mirror-restore-");
    await kept.onMirror.run(["restore", kept.firstId, "--target", target]);
    const diff = await run("diff", ["-r", kept.firstState, path.join(target, kept.source)], {
      okStatuses: [0, 1],
    });
    expect(diff.stdout).toBe("");
    expect(await packs(path.join(kept.mirrorDir, "r"))).toBeGreaterThan(
      await packs(path.join(kept.primary, "r")),
    );

    // Deletes that are 1 s old reach the mirror, in an order that keeps it valid.
    const follows = await scenario(["--mirror-deletes-after", "1s"]);
    for (let i = 0; i < 100 && (await follows.onMirror.json<unknown[]>(["snapshots"])).length > 1; i++)
      await sleep(200);
    expect(await follows.onMirror.json<unknown[]>(["snapshots"])).toHaveLength(1);
    await mirrored(follows.server.url);
    expect(await metric(follows.server.url, "rest_server_mirror_deletes_waiting")).toBe(0);
    await follows.onMirror.run(["check", "--read-data"]);
    expect(await packs(path.join(follows.mirrorDir, "r"))).toBe(await packs(path.join(follows.primary, "r")));
  });
});
