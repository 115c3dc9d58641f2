import { describe, expect, it } from "vitest";
import { parseGetfattr } from "../../src/system/xattr.js";

describe("getfattr output", () => {
  it("decodes file names with octal escapes and base64/hex/text values", () => {
    const output = [
      "# file: /tmp/a\\012b",
      "user.one=0saGk=",
      "user.two=0x6869",
      'user.three="hi"',
      "user.empty",
      "",
      "# file: /tmp/back\\\\slash",
      "trusted.overlay.opaque=0seQ==",
      "",
    ].join("\n");
    const files = parseGetfattr(output);
    expect([...files.keys()]).toEqual(["/tmp/a\nb", "/tmp/back\\slash"]);
    const first = files.get("/tmp/a\nb");
    expect(first?.get("user.one")?.toString()).toBe("hi");
    expect(first?.get("user.two")?.toString()).toBe("hi");
    expect(first?.get("user.three")?.toString()).toBe("hi");
    expect(first?.get("user.empty")?.length).toBe(0);
    expect(files.get("/tmp/back\\slash")?.get("trusted.overlay.opaque")?.toString()).toBe("y");
  });
});
