import { describe, expect, it } from "vitest";
import { pendingActions } from "../../src/statecraft/journal.js";

describe("journal helpers", () => {
  it("lists a journal's pending cleanup actions newest first", () => {
    const entry = (text: string) => `E ${Buffer.from(text).toString("base64")}`;
    const journal = ["P 1 2", entry("umount /a"), entry("btrfs_delete_snapshot u /s"), "P 3 4", ""].join(
      "\n",
    );
    expect(pendingActions(journal)).toEqual(["btrfs_delete_snapshot u /s", "umount /a"]);
  });
});
