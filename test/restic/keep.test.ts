import { describe, expect, it } from "vitest";
import { forgetFlags, RESTIC_DURATION } from "../../src/restic/keep.js";

describe("restic's retention policy", () => {
  it("flags in one fixed order: counts, durations, tags", () => {
    expect(forgetFlags({ within: "90d", daily: 7, last: "unlimited", tag: ["a", "b"] })).toEqual([
      "--keep-last",
      "unlimited",
      "--keep-daily",
      "7",
      "--keep-within",
      "90d",
      "--keep-tag",
      "a",
      "--keep-tag",
      "b",
    ]);
  });

  it("durations as restic takes them: units y m d h, repeated; no weeks", () => {
    for (const ok of ["90d", "1y5m7d2h", "12h"]) expect(RESTIC_DURATION.test(ok)).toBe(true);
    for (const bad of ["2w", "d", "1.5d", "", "90 d"]) expect(RESTIC_DURATION.test(bad)).toBe(false);
  });
});
