// The V8 flags every command runs with, read from the commands' own `#!/usr/bin/env -S node ...`
// line (src/cli/*.ts), so that the npm commands, the executable (SEA execArgv) and the benchmarks
// run alike. --max-semi-space-size=2: a young generation of 2 MiB semi-spaces instead of V8's
// default of up to 16 MiB; a backup of 1,000,000 small files peaked at 153-159 MiB with the
// default and 137-140 MiB with it (the executable, README "snapshotter speed"), at the same speed.
import { readFileSync } from "node:fs";
import path from "node:path";

const ENTRY = path.resolve(import.meta.dirname, "../src/cli/stowage.ts");

/** The flags after `node` on a file's first line. */
export function shebangFlags(file = ENTRY) {
  const first = readFileSync(file, "utf8").split("\n", 1)[0];
  const match = /^#!\/usr\/bin\/env -S node((?: --[a-z0-9-]+(?:=\S+)?)*)$/.exec(first);
  if (!match) throw new Error(`${file}: first line is not '#!/usr/bin/env -S node --flag...': ${first}`);
  return match[1].split(" ").filter(Boolean);
}
