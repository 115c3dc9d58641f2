import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadRepoDefaults } from "../../../src/backrest-sidecar/workloads/repo-defaults.js";

const dir = await mkdtemp(path.join(os.tmpdir(), "stowage-repo-defaults-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, text: string): Promise<string> {
  const at = path.join(dir, name);
  await writeFile(at, text);
  return at;
}

describe("--repo-defaults", () => {
  it("reads YAML and JSON: per repository a schedule, keep spec, hooks and notification targets", async () => {
    const yaml = await file(
      "defaults.yaml",
      [
        "offsite:",
        '  schedule: "0 4 * * *"',
        "  keep: daily=7,weekly=4",
        "  hooks:",
        "    pre: echo before",
        "    post: [echo after]",
        "  notify: [ntfy://ntfy.sh/backups, https://hooks.example/x]",
        "  healthchecks: https://hc-ping.com/abc",
        "local: {keep: last=3}",
      ].join("\n"),
    );
    const loaded = await loadRepoDefaults(yaml);
    expect(loaded.repos.get("offsite")).toEqual({
      schedule: "0 4 * * *",
      keep: "daily=7,weekly=4",
      hooks: { pre: ["echo before"], post: ["echo after"] },
      notify: ["ntfy://ntfy.sh/backups", "https://hooks.example/x"],
      healthchecks: "https://hc-ping.com/abc",
    });
    const json = await file("defaults.json", JSON.stringify({ local: { keep: "last=3" } }));
    expect((await loadRepoDefaults(json)).repos.get("local")).toEqual({ keep: "last=3" });
  });

  it("names every problem with its place in the file; credentials in a bad URL are not quoted", async () => {
    const bad = await file(
      "bad.yaml",
      ["r1:", "  keep: daily=0", "  sheduel: 0 1 * * *", "r2:", "  healthchecks: ftp://u:topsecret@h/x"].join(
        "\n",
      ),
    );
    const error = await loadRepoDefaults(bad).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toContain(`${bad}: `);
    expect(message).toContain("r1.keep: keep spec 'daily=0': keeps nothing");
    expect(message).toMatch(/r1: Unrecognized key.*sheduel/);
    expect(message).toContain("r2.healthchecks: is not an http(s) URL");
    expect(message).not.toContain("topsecret");
    await expect(loadRepoDefaults(path.join(dir, "missing.yaml"))).rejects.toThrow(
      /cannot read --repo-defaults .*missing\.yaml: ENOENT/,
    );
  });
});
