import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const ROOT = path.resolve(import.meta.dirname, "../..");

describe("packaging files", () => {
  it("compose.yaml builds a stage the Dockerfile has", async () => {
    const compose = parse(await readFile(path.join(ROOT, "compose.yaml"), "utf8")) as {
      services: Record<string, { build: { target: string }; volumes: string[] }>;
    };
    const dockerfile = await readFile(path.join(ROOT, "Dockerfile"), "utf8");
    for (const [name, service] of Object.entries(compose.services)) {
      expect(dockerfile, name).toContain(`AS ${service.build.target}\n`);
      expect(service.volumes).toContain("restic-data:/data");
    }
  });
});
