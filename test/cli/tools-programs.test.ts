import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { programsOf, TOOLS } from "../../src/cli/tools.js";

const SRC = path.resolve(import.meta.dirname, "../../src");
/**
 * What a command runs only on a host install, never in its image: rest-server mounting its disk
 * (mount, blkid) and maintaining repositories (restic), backrest-sidecar's rcb mode (the docker
 * CLI). README says so.
 */
const HOST_ONLY: Record<string, readonly string[]> = {
  "rest-server": ["mount", "umount", "blkid", "restic"],
  "backrest-sidecar": ["docker"],
};

/** Every source file a module reaches through its relative imports, static or dynamic. */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const pending = [entry];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, "utf8");
    for (const match of text.matchAll(/(?:from|import\()\s*"(\.{1,2}\/[^"]+)\.js"/g)) {
      pending.push(path.resolve(path.dirname(file), `${match[1]}.ts`));
    }
  }
  return seen;
}

/** The programs those files start by name through exec's run or child_process's spawn. */
function programsRun(files: Iterable<string>): Set<string> {
  const programs = new Set<string>();
  for (const file of files) {
    for (const match of readFileSync(file, "utf8").matchAll(/\b(?:run|spawn)\(\s*"([\w.-]+)"/g)) {
      if (match[1]) programs.add(match[1]);
    }
  }
  return programs;
}

describe("the programs each command's image carries", () => {
  it.each(TOOLS.map((tool) => [tool.name]))("%s's list holds every program its code runs", (name) => {
    const used = programsRun(reachable(path.join(SRC, "cli", `${name}-cli.ts`)));
    const declared = new Set([...(programsOf(name) ?? []), ...(HOST_ONLY[name] ?? [])]);
    expect([...used].filter((program) => !declared.has(program))).toEqual([]);
  });

  it("the umbrella carries every command's programs, once each", () => {
    const all = programsOf("stowage") ?? [];
    for (const tool of TOOLS) expect(all).toEqual(expect.arrayContaining([...tool.programs]));
    expect(new Set(all).size).toBe(all.length);
    expect(programsOf("frobnicate")).toBeUndefined();
  });
});
