import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { Authenticator } from "../../src/rest-server/authenticator.js";
import { parseBasicAuth, parseHtpasswd, sha1Matches } from "../../src/rest-server/htpasswd.js";
import { run } from "../../src/system/exec.js";
import { type HtpasswdFormat, htpasswd } from "../support/htpasswd.js";
import { useScope } from "../support/scope.js";

/** One `user:hash` line exactly as Apache's `htpasswd -n` prints it. */
async function line(user: string, password: string, flags: string[]): Promise<string> {
  return (await run("htpasswd", ["-n", "-b", ...flags, user, password])).stdout.trim();
}

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

/** A logger whose JSON lines are collected, to check what a reload warns about. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: "info" }, { write: (text: string) => lines.push(JSON.parse(text)) });
  return { log, lines };
}

describe("htpasswd files written by Apache's htpasswd", () => {
  const scope = useScope();

  it("verifies -B ($2y$) at several costs and -s ({SHA}); skips -m, -d, -p naming line and format", async () => {
    const lines = [
      "# made with htpasswd",
      await line("b4", "pw-b4", ["-B", "-C", "4"]),
      await line("b5", "pw-b5", ["-B", "-C", "5"]),
      await line("b10", "pw-b10", ["-B", "-C", "10"]),
      await line("sha", "pw-sha", ["-s"]),
      await line("md5", "pw-md5", ["-m"]),
      await line("des", "pw-des", ["-d"]),
      await line("plain", "pw-plain", ["-p"]),
    ];
    expect(lines[1]).toMatch(/^b4:\$2y\$04\$/);
    // CRLF line ends, as a file edited on Windows has them.
    const file = path.join(await scope.tempDir(), ".htpasswd");
    await writeFile(file, `${lines.join("\r\n")}\r\n`);

    const { log, lines: logged } = capturingLogger();
    const auth = await Authenticator.load(file, log);
    for (const user of ["b4", "b5", "b10", "sha"]) {
      expect(await auth.authenticate(basic(user, `pw-${user}`)), user).toBe(user);
      expect(await auth.authenticate(basic(user, "wrong")), user).toBeUndefined();
    }
    for (const user of ["md5", "des", "plain"])
      expect(await auth.authenticate(basic(user, `pw-${user}`)), user).toBeUndefined();

    const warnings = logged.filter((entry) => entry.msg === "line ignored");
    expect(warnings.map((w) => [w.line, w.reason])).toEqual([
      [6, "unsupported hash format for user md5: Apache MD5 ($apr1$, htpasswd -m)"],
      [7, "unsupported hash format for user des: DES crypt (htpasswd -d) or plain text"],
      [8, "unsupported hash format for user plain: plain text or unknown (htpasswd -p)"],
    ]);
    // Never the hash (nor the plain password) in a log line.
    const text = JSON.stringify(logged);
    for (const entry of lines.slice(1)) expect(text).not.toContain(entry.slice(entry.indexOf(":") + 1));
  });

  it("accepts the $2a$ and $2b$ spellings of the same bcrypt hash", async () => {
    const made = await line("u", "pw", ["-B", "-C", "4"]);
    const hash = made.slice(2);
    const file = path.join(await scope.tempDir(), ".htpasswd");
    await writeFile(
      file,
      `y:${hash}\na:${hash.replace("$2y$", "$2a$")}\nb:${hash.replace("$2y$", "$2b$")}\n`,
    );
    const auth = await Authenticator.load(file, capturingLogger().log);
    for (const user of ["y", "a", "b"]) expect(await auth.authenticate(basic(user, "pw"))).toBe(user);
  });

  it("verifies the highest cost htpasswd writes (-C 17)", { timeout: 60_000 }, async () => {
    const file = path.join(await scope.tempDir(), ".htpasswd");
    await htpasswd(file, "slow", "pw-slow", { bcrypt: 17 } satisfies HtpasswdFormat, { create: true });
    const { users } = parseHtpasswd(await readFile(file, "utf8"));
    expect(users.get("slow")).toMatchObject({ kind: "bcrypt", cost: 17 });
    const auth = await Authenticator.load(file, capturingLogger().log);
    expect(await auth.authenticate(basic("slow", "pw-slow"))).toBe("slow");
  });

  it("parses {SHA} digests exactly and rejects malformed lines", async () => {
    const sha = (await line("dave", "secret", ["-s"])).slice(5);
    const { users, skipped } = parseHtpasswd(
      [`dave:${sha}`, "bad name:{SHA}x", "nocolon", `zoë@example.org:${sha}`, "eve:{SHA}short"].join("\n"),
    );
    expect([...users.keys()]).toEqual(["dave", "zoë@example.org"]);
    expect(skipped).toEqual([
      { line: 2, reason: "invalid user name" },
      { line: 3, reason: "not in user:hash form" },
      { line: 5, reason: "unsupported hash format for user eve: malformed {SHA}" },
    ]);
    const dave = users.get("dave");
    expect(dave?.kind === "sha1" && sha1Matches(dave.digest, "secret")).toBe(true);
    expect(dave?.kind === "sha1" && sha1Matches(dave.digest, "wrong")).toBe(false);
  });

  it("parses Basic credentials and rejects malformed encodings", () => {
    const encode = (text: string) => `Basic ${Buffer.from(text).toString("base64")}`;
    expect(parseBasicAuth(encode("alice:pa:ss"))).toEqual({ user: "alice", password: "pa:ss" });
    expect(parseBasicAuth(encode("alice:"))).toEqual({ user: "alice", password: "" });
    expect(parseBasicAuth(encode("no-colon"))).toBeUndefined();
    expect(parseBasicAuth("Basic !!!notbase64")).toBeUndefined();
    expect(parseBasicAuth("Basic YWJj")).toBeUndefined();
    expect(parseBasicAuth("Basic YWJ")).toBeUndefined();
    expect(parseBasicAuth("Bearer abc")).toBeUndefined();
    expect(parseBasicAuth(undefined)).toBeUndefined();
  });
});
