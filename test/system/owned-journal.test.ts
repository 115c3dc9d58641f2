import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deadJournals, OwnedJournal, ownerLine, ownersAlive } from "../../src/system/owned-journal.js";

const dead = "P 999999999 1\n";

describe("owned journals", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("names this process as the owner; any live owner line makes a journal live", async () => {
    const mine = await ownerLine();
    expect(mine).toMatch(new RegExp(`^P ${process.pid} \\d+\\n$`));
    expect(await ownersAlive(mine)).toBe(true);
    expect(await ownersAlive(dead)).toBe(false);
    expect(await ownersAlive(`${dead}E x\n${mine}`)).toBe(true);
    // Our PID with another start time is a reused PID, not us.
    expect(await ownersAlive(`P ${process.pid} 1\nP ${process.pid}\n`)).toBe(false);
  });

  it("finds the journals of dead owners with their records (a torn line skipped), not live ones", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "stowage-journal-"));
    dirs.push(dir);
    const live = await OwnedJournal.create(dir, "live.j");
    live.append([{ n: 1 }]);
    await writeFile(path.join(dir, "dead.j"), `${dead}R {"n":2}\nR {"n":3}\nR {"n"`);
    await writeFile(path.join(dir, "other.txt"), dead);
    expect(await deadJournals(dir, ".j")).toEqual([
      { file: path.join(dir, "dead.j"), records: [{ n: 2 }, { n: 3 }] },
    ]);
    await live.remove();
    expect(await deadJournals(path.join(dir, "missing"), ".j")).toEqual([]);
  });
});
