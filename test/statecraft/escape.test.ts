import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { escapePath, unescapePath } from "../../src/statecraft/escape.js";
import { run } from "../../src/system/exec.js";

describe("statecraft escaping", () => {
  it.each([
    ["/", "-"],
    ["/etc", "etc"],
    ["/var", "var"],
    ["/srv/containers/foo", "srv-containers-foo"],
    ["/podman-containers.json", "podman\\x2dcontainers.json"],
    ["/fcos-release.json", "fcos\\x2drelease.json"],
    ["/.hidden", "\\x2ehidden"],
    ["/a/.b", "a-.b"],
    ["/with space", "with\\x20space"],
    ["/new\nline", "new\\x0aline"],
    ["/ünï", "\\xc3\\xbcn\\xc3\\xaf"],
    ["//srv//./data/", "srv-data"],
    ["/a:b_c", "a:b_c"],
    ["/back\\slash", "back\\x5cslash"],
  ])("escapes %j as %j and back", (path, name) => {
    expect(escapePath(path)).toBe(name);
    expect(unescapePath(name)).toBe(
      path
        .replace(/\/\.\//g, "/")
        .replace(/\/+/g, "/")
        .replace(/(.)\/$/, "$1"),
    );
  });

  it.each(["", "relative", "/a/../b", "/..", "/a\0b"])("refuses to escape %j", (path) => {
    expect(() => escapePath(path)).toThrow();
  });

  it.each([
    ["a\\x2fb", "not canonical"],
    ["a\\x2Db", "not canonical"],
    ["a--b", "not canonical"],
    ["-a", "not canonical"],
    ["a-", "not canonical"],
    ["a-..-b", "invalid path"],
    [".hidden", "not canonical"],
    ["a\\x00b", "NUL"],
    ["a\\xzz", "invalid escape"],
    ["a\\x2", "invalid escape"],
    ["caf\\xc3", "valid UTF-8"],
    ["a b", "not canonical"],
    ["", "empty"],
  ])("-u rejects the non-canonical name %j", (name, message) => {
    expect(() => unescapePath(name)).toThrow(message);
  });

  it("matches systemd-escape --path on random paths, both ways", async () => {
    const alphabet = [
      "a",
      "Z",
      "0",
      "-",
      ".",
      "_",
      ":",
      " ",
      "\n",
      "\t",
      "\\",
      "ü",
      "€",
      "'",
      '"',
      "$",
      "*",
      "x",
      "@",
      "/",
    ];
    const paths: string[] = [];
    for (let n = 0; n < 200; n++) {
      const bytes = randomBytes(1 + (n % 24));
      let path = "/";
      for (const byte of bytes) path += alphabet[byte % alphabet.length];
      if (path.split("/").includes("..")) continue;
      paths.push(path);
    }
    // systemd-escape separates its answers with spaces (escaped names never contain one).
    const escaped = await run("systemd-escape", ["--path", "--", ...paths]);
    const expected = escaped.stdout.trimEnd().split(" ");
    expect(paths.map(escapePath)).toEqual(expected);
    for (const name of expected.slice(0, 60)) {
      const unescaped = await run("systemd-escape", ["--unescape", "--path", "--", name]);
      expect(unescapePath(name)).toBe(unescaped.stdout.slice(0, -1));
    }
  });
});
