import { readlink, stat } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../src/system/exec.js";
import { useScope } from "../support/scope.js";
import { ROOT } from "./harness.js";

describe("make install", () => {
  const scope = useScope();

  it("lays statecraft out like the original, so the seed's paths work under PREFIX", async () => {
    const prefix = await scope.tempDir("stowage-prefix-");
    await run("make", ["-C", ROOT, "install", `PREFIX=${prefix}`]);
    const scripts = path.join(prefix, "lib/statecraft/state-scripts");
    for (const script of [
      "bind.sh",
      "btrfs.sh",
      "fcos-release.sh",
      "lvm.sh",
      "tar-xz.sh",
      "disk-info.sh",
      "external-drive.sh",
      "podman-containers.sh",
    ]) {
      expect((await stat(path.join(scripts, script))).isFile()).toBe(true);
    }
    expect(await readlink(path.join(prefix, "bin/statecraft"))).toBe("stowage");
    // The self-contained executable: no Node.js on the PATH (the host's is in /usr/bin, so only /bin).
    const env = { PATH: `${prefix}/bin:/bin` };
    // The seed's own command line, with the prefix in place of /usr/local.
    const pathsDir = await scope.tempDir("stowage-pathsd-");
    await run("sh", ["-c", `ln -s "${scripts}/bind.sh" "${pathsDir}/$(statecraft -e "/etc").state.sh"`], {
      env,
    });
    const dry = await run("statecraft", ["--dry-run", "-p", pathsDir], { env });
    expect(dry.stdout).toContain(`"/etc": bind.sh (${pathsDir}/etc.state.sh)`);
    await run("make", ["-C", ROOT, "uninstall", `PREFIX=${prefix}`]);
    await expect(stat(path.join(prefix, "bin/statecraft"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
