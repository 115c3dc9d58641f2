import { describe, expect, it } from "vitest";
import { findTool, TOOLS, toolForInvocation } from "../../src/cli/tools.js";

describe("which command an invocation runs", () => {
  it("runs the command a symlink names, and the images' helpers without listing them", () => {
    expect(toolForInvocation("snapshotter", {})?.name).toBe("snapshotter");
    expect(toolForInvocation("create_user", {})?.name).toBe("create_user");
    expect(toolForInvocation("stowage", {})).toBeUndefined();
    expect(TOOLS.map((tool) => tool.name)).not.toContain("create_user");
    expect(findTool("delete_user")?.name).toBe("delete_user");
  });

  it("runs the image's STOWAGE_COMMAND as stowage-entrypoint; rest-server with its image conventions", () => {
    expect(toolForInvocation("stowage-entrypoint", { STOWAGE_COMMAND: "wafers" })?.name).toBe("wafers");
    expect(toolForInvocation("stowage-entrypoint", { STOWAGE_COMMAND: "rest-server" })?.name).toBe(
      "rest-server-image",
    );
    expect(toolForInvocation("stowage-entrypoint", {})).toBeUndefined();
  });
});
