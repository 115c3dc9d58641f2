import { describe, expect, it } from "vitest";
import { objectSegments, parseRepoPath, repoOfStoredPath } from "../../src/rest-server/repo-path.js";

const ID = "a".repeat(64);

describe("parseRepoPath", () => {
  it.each([
    ["/", { kind: "repo", repo: [] }],
    ["/alice/", { kind: "repo", repo: ["alice"] }],
    ["/alice/laptop/", { kind: "repo", repo: ["alice", "laptop"] }],
    ["/alice", { kind: "repo", repo: ["alice"] }],
    ["/config", { kind: "config", repo: [] }],
    ["/alice/laptop/config", { kind: "config", repo: ["alice", "laptop"] }],
    ["/data/", { kind: "list", repo: [], type: "data" }],
    ["/alice/snapshots/", { kind: "list", repo: ["alice"], type: "snapshots" }],
    [`/alice/laptop/keys/${ID}`, { kind: "blob", repo: ["alice", "laptop"], type: "keys", name: ID }],
    [`/data/${ID}`, { kind: "blob", repo: [], type: "data", name: ID }],
    ["/caf%C3%A9/", { kind: "repo", repo: ["café"] }],
  ])("maps %s", (path, target) => {
    expect(parseRepoPath(path)).toEqual({ ok: true, target });
  });

  it.each([
    ["/../etc/", 400, "'.' or '..'"],
    ["/%2e%2e/config", 400, "'.' or '..'"],
    ["/alice/%2E%2E/config", 400, "'.' or '..'"],
    ["/a%2fb/config", 400, "encoded '/'"],
    ["/a%00b/", 400, "NUL"],
    ["/alice//config", 400, "empty path segment"],
    ["/.htpasswd/", 400, "may not start with '.'"],
    ["/%zz/", 400, "malformed percent-encoding"],
    [`/data/${"A".repeat(64)}`, 400, "64 lowercase hex"],
    [`/data/${"a".repeat(63)}`, 400, "64 lowercase hex"],
    [`/data/${"a".repeat(65)}`, 400, "64 lowercase hex"],
    ["/data/../../etc/passwd", 400, "'.' or '..'"],
    ["/a/b/c/", 404, "at most 2 segments"],
    ["/a/b/c/config", 404, "at most 2 segments"],
    [`/data/${ID}/extra`, 404, "not found"],
    ["/config/x", 404, "not found"],
    ["relative", 400, "must start with '/'"],
    [`/${"a".repeat(300)}/config`, 400, "longer than 255 bytes"],
    [`/alice/${encodeURIComponent("é".repeat(128))}/`, 400, "longer than 255 bytes"],
  ])("rejects %s with %i", (path, status, message) => {
    const result = parseRepoPath(path);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.status).toBe(status);
      expect(result.message).toContain(message);
    }
  });

  it("ends the repository path at the first type name, so no subrepo can be named like a type", () => {
    expect(parseRepoPath("/alice/data/")).toEqual({
      ok: true,
      target: { kind: "list", repo: ["alice"], type: "data" },
    });
    expect(parseRepoPath("/keys/config")).toMatchObject({ ok: false, status: 400 });
  });
});

describe("objectSegments: restic's layout, one mapping for both storages", () => {
  it.each([
    ["config", undefined, ["config"]],
    ["data", ID, ["data", "aa", ID]],
    ["data", undefined, ["data"]],
    ["index", ID, ["index", ID]],
    ["snapshots", undefined, ["snapshots"]],
  ] as const)("%s %s", (type, name, segments) => {
    expect(objectSegments(type, name)).toEqual(segments);
  });

  it("is the inverse of repoOfStoredPath's repository part", () => {
    expect(repoOfStoredPath(["alice", "laptop", ...objectSegments("data", ID)])).toBe("alice/laptop");
  });
});
