import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { TOOLS } from "../../src/cli/tools.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

describe("packaging files", () => {
  it("compose.yaml builds stages and commands the Dockerfile has, and shares Backrest's config with the sidecar", async () => {
    const compose = parse(await readFile(path.join(ROOT, "compose.yaml"), "utf8")) as {
      services: Record<
        string,
        { build?: { target?: string; args?: { COMMAND?: string } }; volumes: string[] }
      >;
    };
    const dockerfile = await readFile(path.join(ROOT, "Dockerfile"), "utf8");
    const { services } = compose;
    expect(dockerfile).toContain(`AS ${services["rest-server"]?.build?.target}\n`);
    expect(services["rest-server"]?.volumes).toContain("restic-data:/data");
    expect(TOOLS.map((t) => t.name)).toContain(services.sidecar?.build?.args?.COMMAND);
    expect(services.sidecar?.volumes).toContain("backrest-config:/config");
    expect(services.backrest?.volumes).toContain("backrest-config:/config");
  });
});
