import { appendFile, readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Journal, type QueueEntry } from "../../../src/rest-server/mirror/journal.js";
import { useScope } from "../../support/scope.js";

const entry = (seq: number, name = "a".repeat(64)): QueueEntry => ({
  seq,
  op: "copy",
  repo: ["alice"],
  type: "data",
  name,
  at: 1_000 + seq,
});

describe("mirror journal", () => {
  const scope = useScope();
  const none = { size: 0, entries: () => [] };

  it("replays what was recorded and not done, skips a torn last line, and continues the numbering", async () => {
    const dir = await scope.tempDir("stowage-journal-");
    const first = await Journal.open(dir, none);
    expect(first.entries).toEqual([]);
    await first.journal.record(entry(1));
    await first.journal.record(entry(2));
    await first.journal.record(entry(3));
    first.journal.done(2);
    await first.journal.close();
    // A crash in the middle of a line.
    await appendFile(path.join(dir, "queue.jsonl"), '{"seq":4,"op":"copy","repo":["al');
    const second = await Journal.open(dir, none);
    expect(second.entries).toEqual([entry(1), entry(3)]);
    expect(second.nextSeq).toBe(4);
    // Opening rewrote the file with the pending entries only.
    expect((await readFile(path.join(dir, "queue.jsonl"), "utf8")).trim().split("\n")).toHaveLength(2);
    await second.journal.close();
  });

  it("records made at the same moment share one write; each resolves once it is on the disk", async () => {
    const dir = await scope.tempDir("stowage-journal-");
    const { journal } = await Journal.open(dir, none);
    await Promise.all(Array.from({ length: 50 }, (_, i) => journal.record(entry(i + 1))));
    await journal.close();
    const reopened = await Journal.open(dir, none);
    expect(reopened.entries.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    await reopened.journal.close();
  });
});
