import { chmod, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { deleteUser, setUser } from "../../src/rest-server/htpasswd-users.js";
import { run } from "../../src/system/exec.js";
import { htpasswd } from "../support/htpasswd.js";
import { useScope } from "../support/scope.js";

/** Apache's own check of a password: `htpasswd -v` exits 0 when it matches, 3 when it does not. */
async function apacheVerifies(file: string, user: string, password: string): Promise<boolean> {
  const result = await run("htpasswd", ["-v", "-b", file, user, password], { okStatuses: [0, 3] });
  return result.status === 0;
}

describe("create_user / delete_user's htpasswd editing", () => {
  const scope = useScope();

  it("creates a new file 0600 with a $2y$ line that Apache's htpasswd verifies", async () => {
    const file = path.join(await scope.tempDir("stowage-users-"), ".htpasswd");
    expect(await setUser(file, "alice", "alice-pw")).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, "utf8")).toMatch(/^alice:\$2y\$05\$[./A-Za-z0-9]{53}\n$/);
    expect(await apacheVerifies(file, "alice", "alice-pw")).toBe(true);
    expect(await apacheVerifies(file, "alice", "wrong")).toBe(false);
  });

  it("replaces only its user's line in a file htpasswd made, keeping the others and the file's mode", async () => {
    const file = path.join(await scope.tempDir("stowage-users-"), ".htpasswd");
    await htpasswd(file, "bob", "bob-pw", { bcrypt: 5 }, { create: true });
    await htpasswd(file, "carol", "carol-pw", "sha");
    await htpasswd(file, "dave", "dave-pw", { bcrypt: 4 });
    await chmod(file, 0o640);
    const [bob, , dave] = (await readFile(file, "utf8")).split("\n");
    expect(await setUser(file, "carol", "new-carol-pw")).toBe(false);
    const lines = (await readFile(file, "utf8")).split("\n");
    expect(lines[0]).toBe(bob);
    expect(lines[1]).toMatch(/^carol:\$2y\$05\$/);
    expect(lines[2]).toBe(dave);
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    expect(await apacheVerifies(file, "carol", "new-carol-pw")).toBe(true);
    expect(await apacheVerifies(file, "bob", "bob-pw")).toBe(true);
    expect(await apacheVerifies(file, "dave", "dave-pw")).toBe(true);
  });

  it("deletes a user and leaves the rest; an unknown user or a bad name changes nothing", async () => {
    const file = path.join(await scope.tempDir("stowage-users-"), ".htpasswd");
    await htpasswd(file, "bob", "bob-pw", { bcrypt: 5 }, { create: true });
    await htpasswd(file, "erin", "erin-pw", { bcrypt: 5 });
    expect(await deleteUser(file, "bob")).toBe(true);
    expect(await readFile(file, "utf8")).toMatch(/^erin:\$2y\$05\$[^\n]+\n$/);
    expect(await apacheVerifies(file, "erin", "erin-pw")).toBe(true);
    const before = await readFile(file);
    expect(await deleteUser(file, "nobody")).toBe(false);
    await expect(setUser(file, "a:b", "x")).rejects.toThrow(/without ':'/);
    await expect(setUser(file, "", "x")).rejects.toThrow(/non-empty/);
    expect((await readFile(file)).equals(before)).toBe(true);
    await expect(deleteUser(path.join(path.dirname(file), "missing"), "bob")).rejects.toThrow(
      /does not exist/,
    );
  });

  it("keeps a last line without a line break and Windows line ends of other users", async () => {
    const file = path.join(await scope.tempDir("stowage-users-"), ".htpasswd");
    await htpasswd(file, "bob", "bob-pw", { bcrypt: 5 }, { create: true });
    const bobLine = (await readFile(file, "utf8")).trimEnd();
    await writeFile(file, `${bobLine}\r\nzoe:{SHA}x`);
    await setUser(file, "alice", "alice-pw");
    const lines = (await readFile(file, "utf8")).split("\n");
    expect(lines[0]).toBe(`${bobLine}\r`);
    expect(lines[1]).toBe("zoe:{SHA}x");
    expect(lines[2]).toMatch(/^alice:\$2y\$05\$/);
    expect(await apacheVerifies(file, "bob", "bob-pw")).toBe(true);
  });
});
