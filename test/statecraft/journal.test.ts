import { describe, expect, it } from "vitest";
import { parseProcessStat, pendingActions } from "../../src/statecraft/journal.js";

describe("journal helpers", () => {
  it("reads state and start time from /proc/PID/stat, whatever the command name holds", () => {
    // Fields 4 to 21, then the start time (field 22), then more.
    const tail = "4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 123456 23 24";
    expect(parseProcessStat(`42 (bash) S ${tail}`)).toEqual({ state: "S", startTime: "123456" });
    expect(parseProcessStat(`42 (a) b (c) Z ${tail}`)).toEqual({ state: "Z", startTime: "123456" });
    expect(parseProcessStat(`42 (we ird) X ${tail}`)?.state).toBe("X");
    expect(parseProcessStat("42 (short) S 1 2")).toBeUndefined();
  });

  it("lists a journal's pending cleanup actions newest first", () => {
    const entry = (text: string) => `E ${Buffer.from(text).toString("base64")}`;
    const journal = ["P 1 2", entry("umount /a"), entry("btrfs_delete_snapshot u /s"), "P 3 4", ""].join(
      "\n",
    );
    expect(pendingActions(journal)).toEqual(["btrfs_delete_snapshot u /s", "umount /a"]);
  });
});
