import { describe, expect, it } from "vitest";
import { matchesPattern, parseMaintainConfig } from "../../../src/rest-server/maintain/config.js";
import { forgetFlags } from "../../../src/restic/keep.js";

const minimal = `
server: http://127.0.0.1:8000
user: maintenance
password-file: maint.pw
repos:
  - repo: alice/*
    password-file: /etc/keys/alice
    keep: { last: 7, daily: 14, within: 30d, tag: [keep] }
`;

describe("maintain file", () => {
  it("defaults: 7 days minimum age, 50% share, a daily schedule; paths relative to the file", () => {
    const config = parseMaintainConfig(minimal, "/etc/rest-server/maintain.yaml");
    expect(config.passwordFile).toBe("/etc/rest-server/maint.pw");
    expect(config.repos[0]).toMatchObject({
      pattern: "alice/*",
      passwordFile: "/etc/keys/alice",
      minAgeMs: 7 * 86_400_000,
      maxShare: 0.5,
      scheduleMs: 86_400_000,
    });
    expect(forgetFlags(config.repos[0]?.keep ?? {})).toEqual([
      "--keep-last",
      "7",
      "--keep-daily",
      "14",
      "--keep-within",
      "30d",
      "--keep-tag",
      "keep",
    ]);
  });

  it("overrides per entry over the file's", () => {
    const config = parseMaintainConfig(
      `${minimal.replace("repos:", "min-age: 14d\nmax-forget-share: 0.3\nrepos:")}    min-age: 1d\n    max-forget-share: 25%\n    schedule: 12h\n`,
      "m.yaml",
    );
    expect(config.repos[0]).toMatchObject({ minAgeMs: 86_400_000, maxShare: 0.25, scheduleMs: 43_200_000 });
  });

  it.each([
    ["not: [yaml", /not YAML/],
    [minimal.replace("user: maintenance\n", ""), /\(top\)|user/],
    [
      minimal.replace("keep: { last: 7, daily: 14, within: 30d, tag: [keep] }", "keep: {}"),
      /repos\.0\.keep: keeps nothing/,
    ],
    [minimal.replace("within: 30d", "within: 30 days"), /repos\.0\.keep\.within: a restic duration/],
    [minimal.replace("last: 7", "last: 0"), /repos\.0\.keep\.last/],
    [minimal.replace("server: http://127.0.0.1:8000", "server: localhost"), /server/],
    [`${minimal}    max-forget-share: half\n`, /max-forget-share/],
  ])("refuses %#", (text, message) => {
    expect(() => parseMaintainConfig(text, "m.yaml")).toThrow(message);
  });

  it("patterns: * is one whole segment", () => {
    expect(matchesPattern("alice/*", ["alice", "laptop"])).toBe(true);
    expect(matchesPattern("alice/*", ["alice"])).toBe(false);
    expect(matchesPattern("*", ["bob"])).toBe(true);
    expect(matchesPattern("*/laptop", ["bob", "laptop"])).toBe(true);
    expect(matchesPattern("", [])).toBe(true);
    expect(matchesPattern("alice/laptop", ["alice", "desktop"])).toBe(false);
  });
});
