import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const TOOLS = ["statecraft", "snapshotter", "rest-server", "wafers", "backrest-sidecar"];

/** The built command, as a user runs it (npm test builds before testing). */
function cli(bin: string, args: string[]) {
  const result = spawnSync(process.execPath, [path.join(ROOT, "dist/cli", `${bin}.js`), ...args], {
    encoding: "utf8",
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("stowage umbrella command", () => {
  it("lists the tools with one line each in --help", () => {
    const { status, stdout } = cli("stowage", ["--help"]);
    expect(status).toBe(0);
    for (const tool of TOOLS) expect(stdout).toMatch(new RegExp(`^  ${tool} +\\S.+$`, "m"));
  });

  it("rejects an unknown command with a usage error naming it", () => {
    const { status, stderr } = cli("stowage", ["frobnicate"]);
    expect(status).toBe(2);
    expect(stderr).toContain("unknown command 'frobnicate'");
  });

  it("rejects an unknown option with exit status 2", () => {
    const { status, stderr } = cli("stowage", ["--frobnicate"]);
    expect(status).toBe(2);
    expect(stderr).toContain("unknown option '--frobnicate'");
  });

  it("prints the package version", () => {
    const { status, stdout } = cli("stowage", ["--version"]);
    expect(status).toBe(0);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("exits 2 with the help when no command is given", () => {
    const { status, stdout, stderr } = cli("stowage", []);
    expect(status).toBe(2);
    expect(stdout).toContain("Commands:");
    expect(stderr).toContain("no command given");
  });
});
