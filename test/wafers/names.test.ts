import { describe, expect, it } from "vitest";
import { formatTree, type WaferInfo } from "../../src/wafers/inspect.js";
import { checkName, nameProblem } from "../../src/wafers/names.js";

describe("wafer names (machinectl's rule)", () => {
  it.each(["archbase", "arch-base_2", "a.b.c", "A", "x".repeat(64), "fedora-41.x86_64"])(
    "accepts %j",
    (name) => {
      expect(nameProblem(name)).toBeUndefined();
    },
  );

  it.each([
    ["", "is empty"],
    ["x".repeat(65), "longer than 64"],
    [".", "'.' or '..'"],
    ["..", "'.' or '..'"],
    [".hidden", "starts with a dot"],
    ["a..b", "empty label"],
    ["a.", "empty label"],
    ["a/b", "may hold only"],
    ["a b", "may hold only"],
    ["ä", "may hold only"],
    ["a:b", "may hold only"],
  ])("refuses %j (%s)", (name, reason) => {
    expect(nameProblem(name)).toContain(reason);
    expect(() => checkName(name)).toThrow(reason);
  });
});

describe("wafers tree", () => {
  const info = (name: string, parent: string | null, extra: Partial<WaferInfo> = {}): WaferInfo => ({
    name,
    parent,
    depth: 1,
    mounts: [],
    problem: null,
    ...extra,
  });

  it("draws children under their parents and broken ones apart", () => {
    const text = formatTree([
      info("base", null),
      info("a", "base"),
      info("a1", "a", { mounts: [{ path: "/m/a1", kind: "overlay", writable: true }] }),
      info("b", "base"),
      info("loop", "loop", { problem: "cycle: loop -> loop" }),
    ]);
    expect(text).toBe(
      ["base", "├── a", "│   └── a1  [stacked at /m/a1]", "└── b", "loop  !! cycle: loop -> loop"].join("\n"),
    );
  });
});
