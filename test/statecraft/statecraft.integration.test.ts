import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readMountinfo } from "../../src/system/mountinfo.js";
import { useScope } from "../support/scope.js";
import {
  escapeOf,
  fcosLayout,
  journals,
  leftoverSnapshots,
  PODMAN_RUN_DIRS,
  podmanStandIns,
  statecraft,
  waitForFile,
} from "./harness.js";

const mountTable = async () =>
  (await readMountinfo()).map((m) => `${m.mountPoint} ${m.fsType} ${m.root}`).sort();

describe("statecraft on real btrfs, bind mounts and namespaces", () => {
  const scope = useScope();

  it("assembles seed 000's layout read-only, isolated from the host, and removes every snapshot", async () => {
    const layout = await fcosLayout(scope);
    // The seed's script verbatim, except the one expression Debian 12's jq 1.6 cannot parse.
    const seedScript = await readFile(
      path.join(import.meta.dirname, "fixtures", "podman-containers.state.sh"),
      "utf8",
    );
    expect(seedScript).toContain("'{$user: .}'");
    await writeFile(
      path.join(layout.pathsDir, `${await escapeOf(path.join(layout.base, "info", "status.json"))}.state.sh`),
      seedScript.replace("'{$user: .}'", "'{($user): .}'"),
      { mode: 0o644 },
    );
    // The custom script's dependencies, as stand-ins.
    const bin = await podmanStandIns(layout.base, '[{\\"Id\\":\\"abc\\",\\"Names\\":[\\"web\\"]}]');

    const report = path.join(layout.base, "report");
    const go = path.join(layout.base, "go");
    const check = path.join(layout.base, "check.sh");
    const rel = (p: string) => `.${p}`;
    await writeFile(
      check,
      `#!/bin/bash
exec > ${report}.tmp 2>&1
echo "cwd=$(pwd)"
cat ${rel(layout.etc)}/hostname ${rel(path.join(layout.base, "single.conf"))}
cat ${rel(layout.var)}/var-data ${rel(layout.srv)}/srv-data ${rel(layout.foo)}/foo-data ${rel(layout.bar)}/bar-data
echo "var after" > ${layout.var}/late && test ! -e ${rel(layout.var)}/late && echo "late write not in snapshot"
for d in ${rel(layout.etc)} ${rel(layout.var)} ${rel(layout.srv)} ${rel(layout.foo)} ${rel(layout.bar)}; do
  touch "$d/x" 2>&1 | grep -q "Read-only file system" && echo "readonly" || echo "WRITABLE $d"
done
echo "json=$(jq -c . ${rel(path.join(layout.base, "info", "status.json"))})"
mv ${report}.tmp ${report}
while [ ! -e ${go} ]; do sleep 0.05; done
`,
      { mode: 0o755 },
    );
    const before = await mountTable();
    // Podman's run dirs for root and for user 0, on a private /run so the host's stays untouched.
    const child = statecraft(
      ["-p", layout.pathsDir, "--", check],
      { STATECRAFT_STATE_DIR: layout.stateDir, PATH: `${bin}:${process.env.PATH}` },
      undefined,
      PODMAN_RUN_DIRS,
    );
    let stderr = "";
    child.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    const text = await waitForFile(report);
    const during = await mountTable();
    const snapshotsDuring = await leftoverSnapshots(layout.varTop, layout.srvTop);
    await writeFile(go, "");
    expect(await exited, stderr).toBe(0);

    expect(text).toMatch(/^cwd=\/run\/statecraft\/[A-Za-z0-9]{10}\/target$/m);
    expect(text).toContain("fcos\nsingle file\nvar before\nsrv before\nfoo before\nbar before\n");
    expect(text).toContain("late write not in snapshot");
    expect(text.match(/readonly/g)).toHaveLength(5);
    expect(text).not.toContain("WRITABLE");
    expect(text).toContain(
      'json=[{"root":[{"Id":"abc","Names":["web"]}]},{"root":[{"Id":"abc","Names":["web"]}]}]',
    );
    expect(during).toEqual(before);
    expect(stderr).toBe("");
    expect(snapshotsDuring).toHaveLength(4);
    expect(snapshotsDuring.join("\n")).toMatch(/\.snapshots\/snap-/);
    expect(snapshotsDuring.join("\n")).toMatch(/@foo_snap-/);
    expect(await leftoverSnapshots(layout.varTop, layout.srvTop)).toEqual([]);
    expect(await mountTable()).toEqual(before);
    expect(await journals(layout.stateDir)).toEqual([]);
  });
});
