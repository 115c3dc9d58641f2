import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/system/log.js";
import { useScope } from "../support/scope.js";

async function logTo(file: string, pretty: boolean): Promise<string> {
  const fd = openSync(file, "w");
  const log = createLogger({ name: "stowage-test", fd, pretty });
  log.info({ action: "snapshot", path: "/srv" }, "snapshot taken");
  log.debug("hidden at info level");
  closeSync(fd);
  return readFile(file, "utf8");
}

describe("createLogger", () => {
  const scope = useScope();

  it("writes one JSON object per line with a word for the level and structured fields", async () => {
    const text = await logTo(path.join(await scope.tempDir(), "log.json"), false);
    const lines = text.trim().split("\n");
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0] ?? "");
    expect(record).toMatchObject({
      level: "info",
      name: "stowage-test",
      action: "snapshot",
      path: "/srv",
      msg: "snapshot taken",
    });
    expect(new Date(record.time).getTime()).not.toBeNaN();
  });

  it("writes readable lines for a person", async () => {
    const text = await logTo(path.join(await scope.tempDir(), "log.txt"), true);
    expect(text).toContain("snapshot taken");
    expect(text).toContain("INFO");
    expect(() => JSON.parse(text)).toThrow();
  });
});
