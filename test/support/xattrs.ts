import { run } from "../../src/system/exec.js";
import { parseGetfattr, type Xattrs } from "../../src/system/xattr.js";

/**
 * Every extended attribute under `dir`, as the real `getfattr -R` reports them: file (a byte
 * string, see tar/names.ts; the same as the text for ASCII names) -> name -> value.
 */
export async function xattrsOfTree(dir: string): Promise<Map<string, Xattrs>> {
  const result = await run(
    "getfattr",
    [
      "--recursive",
      "--physical",
      "--no-dereference",
      "--dump",
      "--match=-",
      "--encoding=base64",
      "--absolute-names",
      "--",
      dir,
    ],
    { env: { ...process.env, LC_ALL: "C" }, maxStdoutBytes: 1024 * 1024 * 1024 },
  );
  return parseGetfattr(result.stdout);
}
