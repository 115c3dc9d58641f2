import { createHash } from "node:crypto";
import bcrypt from "bcrypt";
import { describe, expect, it } from "vitest";
import { parseBasicAuth, parseHtpasswd, sha1Matches } from "../../src/rest-server/htpasswd.js";

const sha = (password: string) => `{SHA}${createHash("sha1").update(password).digest("base64")}`;

describe("htpasswd", () => {
  it("reads bcrypt ($2a$, $2b$, $2y$) and {SHA} entries and skips the rest with a reason", () => {
    const b = bcrypt.hashSync("pw", 4);
    const text = [
      "# comment",
      `alice:${b}`,
      `bob:${b.replace("$2b$", "$2y$")}`,
      `carol:${b.replace("$2b$", "$2a$")}`,
      `dave:${sha("secret")}`,
      "eve:$apr1$abc$def",
      "bad name:{SHA}x",
      "nocolon",
      "",
      `zoë@example.org:${sha("x")}`,
    ].join("\n");
    const { users, skipped } = parseHtpasswd(text);
    expect([...users.keys()]).toEqual(["alice", "bob", "carol", "dave", "zoë@example.org"]);
    expect(users.get("alice")).toMatchObject({ kind: "bcrypt", cost: 4 });
    expect(skipped).toEqual([
      { line: 6, reason: "unsupported hash for user eve" },
      { line: 7, reason: "invalid user name" },
      { line: 8, reason: "not in user:hash form" },
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
