import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { htpasswd, htpasswdAtPrompt } from "../support/htpasswd.js";
import { resticClient } from "../support/restic.js";
import { freePort, type TestScope, useScope } from "../support/scope.js";
import { selfSignedCert } from "../support/tls.js";
import { spawnServer } from "./process.js";

/** A few hundred small files, some empty, one large random file. */
async function makeSource(scope: TestScope, largeBytes = 24 * 1024 * 1024): Promise<string> {
  const source = path.join(await scope.tempDir("stowage-src-"), "source");
  for (let dir = 0; dir < 10; dir++) {
    await mkdir(path.join(source, `dir${dir}`), { recursive: true });
    for (let file = 0; file < 30; file++) {
      await writeFile(path.join(source, `dir${dir}`, `file${file}`), randomBytes((dir * 30 + file) * 37));
    }
  }
  await writeFile(path.join(source, "large.bin"), randomBytes(largeBytes));
  return source;
}

async function assertRestoredIdentical(
  scope: TestScope,
  restic: Awaited<ReturnType<typeof resticClient>>,
  source: string,
) {
  const target = await scope.tempDir("stowage-restore-");
  await restic.run(["restore", "latest", "--target", target]);
  await run("diff", ["-r", "--no-dereference", source, path.join(target, source)]);
}

describe("rest-server with the real restic client", () => {
  const scope = useScope();

  async function server(args: string[] = []) {
    const root = await scope.tempDir("stowage-rest-");
    const port = await freePort();
    const proc = await spawnServer(scope, ["--path", root, "--listen", `127.0.0.1:${port}`, ...args]);
    return { root, proc, base: `rest:http://127.0.0.1:${port}` };
  }

  it.each(["/", "/alice/", "/alice/laptop/"])(
    "init, backup, snapshots, check --read-data, restore, forget --prune in %s",
    async (repo) => {
      const { base } = await server(["--no-auth"]);
      const source = await makeSource(scope, repo === "/" ? 24 * 1024 * 1024 : 2 * 1024 * 1024);
      const restic = await resticClient(scope, `${base}${repo}`);
      await restic.run(["init"]);
      await restic.run(["backup", "--host", "test", source]);
      await writeFile(path.join(source, "dir0", "file1"), "changed");
      await restic.run(["backup", "--host", "test", source]);
      const snapshots = await restic.json<unknown[]>(["snapshots"]);
      expect(snapshots).toHaveLength(2);
      await restic.run(["check", "--read-data"]);
      await assertRestoredIdentical(scope, restic, source);
      await restic.run(["forget", "--keep-last", "1", "--prune"]);
      expect(await restic.json<unknown[]>(["snapshots"])).toHaveLength(1);
      await restic.run(["check", "--read-data"]);
    },
  );

  it("serves users made as seed 002 says (touch; htpasswd -B), plus -C 12, {SHA} and CRLF lines, with --private-repos", async () => {
    // Seed 002, verbatim: cd to the disk, mkdir restic/, touch restic/.htpasswd, htpasswd -B restic/.htpasswd username.
    const disk = await scope.tempDir("stowage-disk-");
    await run("mkdir", ["restic/"], { cwd: disk });
    await run("touch", ["restic/.htpasswd"], { cwd: disk });
    await htpasswdAtPrompt("htpasswd -B restic/.htpasswd username", "username-pw", disk);
    const file = path.join(disk, "restic", ".htpasswd");
    await htpasswd(file, "alice", "alice-pw", { bcrypt: 12 });
    await htpasswd(file, "bob", "bob-pw", "sha");
    // The same file with CRLF line ends still serves everyone.
    await writeFile(file, (await readFile(file, "utf8")).replaceAll("\n", "\r\n"));
    expect(await readFile(file, "utf8")).toMatch(
      /^username:\$2y\$05\$.*\r\nalice:\$2y\$12\$.*\r\nbob:\{SHA\}/s,
    );

    const port = await freePort();
    const root = path.join(disk, "restic");
    await spawnServer(scope, ["--path", root, "--listen", `127.0.0.1:${port}`, "--private-repos"]);
    const source = await makeSource(scope, 1024 * 1024);
    for (const [user, password] of [
      ["username", "username-pw"],
      ["alice", "alice-pw"],
      ["bob", "bob-pw"],
    ]) {
      const client = await resticClient(scope, `rest:http://${user}:${password}@127.0.0.1:${port}/${user}/`);
      await client.run(["init"]);
      await client.run(["backup", source]);
      await client.run(["check", "--read-data"]);
      await assertRestoredIdentical(scope, client, source);
    }

    const intruder = await resticClient(scope, `rest:http://bob:bob-pw@127.0.0.1:${port}/alice/`);
    const denied = await intruder.run(["snapshots"], { okStatuses: [1] });
    expect(denied.stderr).toMatch(/401|unauthorized/i);
    const wrong = await resticClient(scope, `rest:http://alice:bad@127.0.0.1:${port}/alice/`);
    expect((await wrong.run(["snapshots"], { okStatuses: [1] })).stderr).toMatch(/401|unauthorized/i);
  });

  it("in --append-only mode backups work and forget fails", async () => {
    const { base } = await server(["--no-auth", "--append-only"]);
    const source = await makeSource(scope, 1024 * 1024);
    const restic = await resticClient(scope, `${base}/appendonly/`);
    await restic.run(["init"]);
    await restic.run(["backup", source]);
    await restic.run(["backup", source]);
    const snapshots = await restic.json<Array<{ id: string }>>(["snapshots"]);
    expect(snapshots).toHaveLength(2);
    const forget = await restic.run(["forget", snapshots[0]?.id ?? ""], { okStatuses: [1] });
    expect(forget.stderr).toMatch(/403|forbidden/i);
    expect(await restic.json<unknown[]>(["snapshots"])).toHaveLength(2);
    await restic.run(["check"]);
  });

  it("serves restic over TLS with a self-signed certificate", async () => {
    const dir = await scope.tempDir("stowage-tls-");
    const { cert, key } = await selfSignedCert(dir, "127.0.0.1");
    const { base } = await server(["--no-auth", "--tls", "--tls-cert", cert, "--tls-key", key]);
    const url = base.replace("rest:http:", "rest:https:");
    const source = await makeSource(scope, 1024 * 1024);
    const restic = await resticClient(scope, `${url}/tls/`);
    await restic.run(["--cacert", cert, "init"]);
    await restic.run(["--cacert", cert, "backup", source]);
    await restic.run(["--cacert", cert, "check", "--read-data"]);
    const untrusted = await restic.run(["snapshots"], { okStatuses: [1] });
    expect(untrusted.stderr).toMatch(/certificate/i);
  });
});
