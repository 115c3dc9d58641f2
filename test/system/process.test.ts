import { describe, expect, it } from "vitest";
import { parseProcessStat, processAlive, processStartTime } from "../../src/system/process.js";

describe("process liveness", () => {
  it("reads state and start time from /proc/PID/stat, whatever the command name holds", () => {
    // Fields 4 to 21, then the start time (field 22), then more.
    const tail = "4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 123456 23 24";
    expect(parseProcessStat(`42 (bash) S ${tail}`)).toEqual({ state: "S", startTime: "123456" });
    expect(parseProcessStat(`42 (a) b (c) Z ${tail}`)).toEqual({ state: "Z", startTime: "123456" });
    expect(parseProcessStat(`42 (we ird) X ${tail}`)?.state).toBe("X");
    expect(parseProcessStat("42 (short) S 1 2")).toBeUndefined();
  });

  it("knows this process is alive and a reused PID is not the recorded one", async () => {
    const start = (await processStartTime(process.pid)) as string;
    expect(await processAlive(process.pid, start)).toBe(true);
    expect(await processAlive(process.pid, `${start}0`)).toBe(false);
  });
});
