import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/system/errors.js";
import { htpasswd as addUser, htpasswdFile } from "../support/htpasswd.js";
import { useScope } from "../support/scope.js";
import type { TestBackend } from "./backends.js";
import { createRepo, request, sha256 } from "./fixture.js";

const ALICE: [string, string] = ["alice", "alice-secret"];
const BOB: [string, string] = ["bob", "bob-secret"];

/** alice with bcrypt (`htpasswd -B`, `$2y$`), bob with {SHA} (`htpasswd -s`), made by Apache's tool. */
function htpasswd(dir: string, cost = 4): Promise<string> {
  return htpasswdFile(path.join(dir, ".htpasswd"), [
    [...ALICE, { bcrypt: cost }],
    [...BOB, "sha"],
  ]);
}

/** Authentication and access control against one storage (directory, or Ceph RGW). */
export function describeAuth(backend: TestBackend): void {
  describe(`rest-server authentication and access control (${backend.kind} storage)`, () => {
    const scope = useScope();
    const start = (overrides = {}) => backend.start(scope, overrides);

    async function authServer(overrides = {}) {
      const root = await scope.tempDir("stowage-rest-");
      await htpasswd(root);
      return start({ path: root, noAuth: false, ...overrides });
    }

    it("demands Basic credentials with WWW-Authenticate and accepts bcrypt and {SHA} users", async () => {
      const { url } = await authServer();
      const anonymous = await request(url, "/?create=true", { method: "POST" });
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers["www-authenticate"]).toMatch(/^Basic realm=/);
      expect((await request(url, "/?create=true", { method: "POST", auth: ["alice", "wrong"] })).status).toBe(
        401,
      );
      expect((await request(url, "/?create=true", { method: "POST", auth: ["mallory", "x"] })).status).toBe(
        401,
      );
      for (const header of ["Basic !!!", "Basic YWxpY2U=", "Basic", "Digest abc", `Basic ${"A".repeat(5)}`]) {
        const reply = await request(url, "/keys/", { headers: { Authorization: header } });
        expect(reply.status, header).toBe(401);
      }
      expect((await request(url, "/?create=true", { method: "POST", auth: ALICE })).status).toBe(200);
      expect((await request(url, "/keys/", { auth: BOB })).status).toBe(200);
    });

    it("keeps each user to /<user>/ with --private-repos", async () => {
      const { url } = await authServer({ privateRepos: true });
      await createRepo(url, "/alice/", ALICE);
      await createRepo(url, "/alice/laptop/", ALICE);
      expect((await request(url, "/bob/?create=true", { method: "POST", auth: ALICE })).status).toBe(401);
      expect((await request(url, "/alice/keys/", { auth: BOB })).status).toBe(401);
      expect((await request(url, "/alice/laptop/config", { method: "HEAD", auth: BOB })).status).toBe(401);
      expect((await request(url, "/?create=true", { method: "POST", auth: ALICE })).status).toBe(401);
      expect((await request(url, "/alice/laptop/keys/", { auth: ALICE })).status).toBe(200);
    });

    it("takes the user from a trusted proxy header", async () => {
      const { url } = await authServer({ proxyAuthUsername: "X-Forwarded-User", privateRepos: true });
      expect(
        (
          await request(url, "/carol/?create=true", {
            method: "POST",
            headers: { "X-Forwarded-User": "carol" },
          })
        ).status,
      ).toBe(200);
      expect(
        (
          await request(url, "/alice/?create=true", {
            method: "POST",
            headers: { "X-Forwarded-User": "carol" },
          })
        ).status,
      ).toBe(401);
      expect((await request(url, "/alice/?create=true", { method: "POST", auth: ALICE })).status).toBe(200);
    });

    it("with --proxy-auth-username and no htpasswd file, the header is the only way in (upstream 0.14)", async () => {
      const root = await scope.tempDir("stowage-rest-");
      const { url } = await start({
        path: root,
        noAuth: false,
        proxyAuthUsername: "X-Forwarded-User",
        privateRepos: true,
      });
      const as = (user: string) => ({ headers: { "X-Forwarded-User": user } });
      expect((await request(url, "/dave/?create=true", { method: "POST", ...as("dave") })).status).toBe(200);
      expect((await request(url, "/dave/keys/", as("dave"))).status).toBe(200);
      expect((await request(url, "/dave/keys/")).status).toBe(401);
      expect((await request(url, "/dave/keys/", { auth: ALICE })).status).toBe(401);
      expect((await request(url, "/dave/keys/", as("eve"))).status).toBe(401);
    });

    it("re-reads the htpasswd file when it changes, and on reload()", async () => {
      const root = await scope.tempDir("stowage-rest-");
      const file = await htpasswd(root);
      const { url, server } = await start({ path: root, noAuth: false });
      const carol: [string, string] = ["carol", "carol-secret"];
      expect((await request(url, "/keys/", { auth: carol })).status).toBe(401);
      await addUser(file, ...carol, { bcrypt: 4 });
      await server.reload();
      await createRepo(url, "/", carol);
      expect((await request(url, "/keys/", { auth: carol })).status).toBe(200);

      await htpasswdFile(file, [[...ALICE, { bcrypt: 4 }]]);
      await new Promise((resolve) => setTimeout(resolve, 2_100));
      expect((await request(url, "/keys/", { auth: carol })).status).toBe(401);
      expect((await request(url, "/keys/", { auth: ALICE })).status).toBe(200);
    });

    it("spends as long on an unknown user as on a wrong password", async () => {
      const root = await scope.tempDir("stowage-rest-");
      await htpasswd(root, 10);
      const { url } = await start({ path: root, noAuth: false });
      const time = async (auth: [string, string]) => {
        const started = process.hrtime.bigint();
        expect((await request(url, "/keys/", { auth })).status).toBe(401);
        return Number(process.hrtime.bigint() - started) / 1e6;
      };
      const median = async (make: (i: number) => [string, string]) => {
        const times: number[] = [];
        for (let i = 0; i < 7; i++) times.push(await time(make(i)));
        return times.sort((a, b) => a - b)[3] as number;
      };
      const wrong = await median((i) => ["alice", `nope${i}`]);
      const unknown = await median((i) => [`nobody${i}`, "nope"]);
      // Cost 10 is tens of milliseconds; a fast path for unknown names would be well under 1 ms.
      expect(wrong).toBeGreaterThan(10);
      expect(unknown).toBeGreaterThan(wrong * 0.5);
      expect(unknown).toBeLessThan(wrong * 2);
    });

    it("refuses to start without a loadable htpasswd file, or with --private-repos and --no-auth", async () => {
      const root = await scope.tempDir("stowage-rest-");
      await expect(start({ path: root, noAuth: false })).rejects.toThrow(
        `cannot load htpasswd file ${path.join(root, ".htpasswd")}`,
      );
      await expect(start({ path: root, privateRepos: true })).rejects.toBeInstanceOf(ConfigError);
      await expect(start({ path: root, tlsCert: "/x" })).rejects.toThrow(
        "--tls-cert and --tls-key need --tls",
      );
    });

    it("lets append-only clients add and delete locks but nothing else", async () => {
      const { url } = await start({ appendOnly: true });
      await createRepo(url, "/");
      expect((await request(url, "/config", { method: "POST", body: "cfg" })).status).toBe(200);
      const lock = "lock";
      const data = "data";
      expect((await request(url, `/locks/${sha256(lock)}`, { method: "POST", body: lock })).status).toBe(200);
      expect((await request(url, `/data/${sha256(data)}`, { method: "POST", body: data })).status).toBe(200);
      // Re-upload of an identical blob after a lost response succeeds (upstream #196).
      expect((await request(url, `/data/${sha256(data)}`, { method: "POST", body: data })).status).toBe(200);
      expect((await request(url, `/data/${sha256(data)}`, { method: "DELETE" })).status).toBe(403);
      expect((await request(url, "/config", { method: "DELETE" })).status).toBe(403);
      expect((await request(url, `/locks/${sha256(lock)}`, { method: "DELETE" })).status).toBe(200);
      expect((await request(url, `/data/${sha256(data)}`)).text).toBe(data);
    });

    it("skips our hash checks with --no-verify-upload, refusing to overwrite", async () => {
      const { url, objects } = await start({ noVerifyUpload: true });
      await createRepo(url, "/");
      const id = sha256("something else");
      const mismatch = await request(url, `/data/${id}`, { method: "POST", body: "content" });
      if (backend.kind === "fs") expect(mismatch.status).toBe(200);
      else {
        // On S3 the PUT is signed with the name as its payload hash: RGW checks it for free.
        expect(mismatch.status).toBe(400);
        expect(await objects()).toEqual([]);
      }
      const body = "content";
      expect((await request(url, `/data/${sha256(body)}`, { method: "POST", body })).status).toBe(200);
      expect((await request(url, `/data/${sha256(body)}`, { method: "POST", body })).status).toBe(403);
    });
  });
}
