import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";

const CLI = path.resolve(import.meta.dirname, "../../src/cli");

describe("the commands' node flags", () => {
  it("are the same on every command's #! line (scripts/node-flags.mjs gives them to the executable too)", async () => {
    const firsts: string[] = [];
    for (const name of await readdir(CLI)) {
      const first = (await readFile(path.join(CLI, name), "utf8")).split("\n", 1)[0] as string;
      if (first.startsWith("#!")) firsts.push(first);
    }
    expect(firsts.length).toBeGreaterThanOrEqual(6);
    expect(new Set(firsts)).toEqual(new Set(["#!/usr/bin/env -S node --max-semi-space-size=2"]));
  });
});
