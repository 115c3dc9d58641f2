import { randomBytes } from "node:crypto";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { escapePath } from "../../src/statecraft/escape.js";
import { run } from "../../src/system/exec.js";
import { useScope } from "../support/scope.js";

const LIB = path.resolve(import.meta.dirname, "../../lib/statecraft");

/** Run bash with the helper library loaded; returns stdout, stderr and status. */
function lib(script: string, env: NodeJS.ProcessEnv = {}) {
  return run("bash", ["-c", `source "$LIB_DIR/include/statecraft.sh"\n${script}`], {
    env: { ...process.env, LIB_DIR: LIB, ...env },
    okStatuses: [0, 1, 2],
  });
}

describe("statecraft's bash helper library", () => {
  const scope = useScope();

  it("escape_path and unescape_path agree with the TypeScript (and so systemd-escape) on random paths", async () => {
    const alphabet = ["a", "Z", "0", "-", ".", "_", ":", " ", "\t", "\\", "ü", "'", "$", "*", "/", "?"];
    const paths = Array.from({ length: 150 }, (_, n) => {
      let p = "/";
      for (const byte of randomBytes(1 + (n % 16))) p += alphabet[byte % alphabet.length];
      return p;
    }).filter((p) => !p.split("/").includes(".."));
    const file = path.join(await scope.tempDir(), "paths");
    await writeFile(file, paths.join("\0"));
    const result = await lib(
      `while IFS= read -r -d '' p; do n="$(escape_path "$p")"; u="$(unescape_path "$n"; printf x)"; printf '%s\\0%s\\0' "$n" "\${u%x}"; done < <(cat "${file}"; printf '\\0')`,
    );
    const out = result.stdout.split("\0");
    paths.forEach((p, i) => {
      const name = escapePath(p);
      expect(out[2 * i], p).toBe(name);
      expect(escapePath(out[2 * i + 1] ?? "")).toBe(name);
    });
  });

  it("unescape_path rejects non-canonical names", async () => {
    for (const name of ["a\\x2fb", "a--b", "-a", ".x", "a\\x2Db", "a-..-b"]) {
      const result = await lib(`unescape_path '${name}'`);
      expect(result.status, name).toBe(1);
      expect(result.stderr).toContain("not a canonical escaped path");
    }
    expect((await lib("unescape_path 'a\\x00b'")).stderr).toContain("contains NUL");
    expect(
      (await lib("unescape_target_path 'srv+mnt-disk'; echo; unescape_source_path 'srv+mnt-disk'")).stdout,
    ).toBe("/srv\n/mnt/disk");
  });

  it("check_path tests grouped and negated flags and names the failure", async () => {
    const dir = await scope.tempDir();
    await writeFile(path.join(dir, "file"), "x");
    await writeFile(path.join(dir, "empty"), "");
    await symlink("file", path.join(dir, "link"));
    const ok = await lib(
      `check_path "${dir}" info -edrx && check_path "${dir}/file" info -efrs +d && check_path "${dir}/link" info -h && check_path "${dir}/nope" info +e`,
    );
    expect(ok.status, ok.stderr).toBe(0);
    const missing = await lib(`check_path "${dir}/nope" "Invalid path 'x':" -e`);
    expect([missing.status, missing.stderr]).toEqual([
      1,
      `Invalid path 'x': '${dir}/nope': No such file or directory\n`,
    ]);
    expect((await lib(`check_path "${dir}/empty" info -s`)).stderr).toContain("File is empty");
    expect((await lib(`check_path "${dir}/file" info +e`)).stderr).toContain("File exists");
    expect((await lib(`check_path "${dir}" info -f`)).stderr).toContain("Not a file");
    expect((await lib(`check_path "${dir}" info -q`)).status).toBe(2);
  });

  it("quote, quiet, verbose and cmd behave as documented", async () => {
    const result = await lib(`quote a 'b c' "it's"; echo; quiet shown; verbose hidden; cmd echo run`, {
      QUIET: "false",
      VERBOSE: "false",
    });
    expect(result.stdout).toBe("a 'b c' 'it'\\''s'\nshown\nrun\n");
    expect(result.stderr).toBe("");
    const loud = await lib("quiet hidden; cmd echo run; echo piped | verbose", {
      QUIET: "true",
      VERBOSE: "true",
    });
    expect(loud.stdout).toBe("run\n");
    expect(loud.stderr).toBe("+ echo run\npiped\n");
    expect((await lib("get_random 10")).stdout).toMatch(/^[A-Za-z0-9]{10}$/);
  });

  it("trap_exit journals entries that journal_replay runs last-in first-out, even after failures", async () => {
    const dir = await scope.tempDir();
    const journal = path.join(dir, "journal");
    const out = path.join(dir, "out");
    const result = await lib(
      `trap_exit sh -c 'echo first >> "$1"' sh "${out}"; trap_exit false; trap_exit_eval 'echo "third $((1+1))" >> "${out}"'; journal_replay "$STATECRAFT_JOURNAL"; echo "status=$?"`,
      { STATECRAFT_JOURNAL: journal },
    );
    expect(result.stdout).toBe("status=1\n");
    expect(result.stderr).toContain("cleanup failed: false");
    const { readFile } = await import("node:fs/promises");
    expect(await readFile(out, "utf8")).toBe("third 2\nfirst\n");
  });

  it("mkmountpoint creates missing directories with the host's modes and journals their removal", async () => {
    const dir = await scope.tempDir();
    const base = path.join(dir, "target");
    await mkdir(base);
    const host = await scope.tempDir();
    await mkdir(path.join(host, "private"), { mode: 0o700 });
    const journal = path.join(dir, "journal");
    const id = escapePath(path.join(host, "private", "x"));
    const made = await lib(
      `mkmountpoint "${base}" '${id}' && stat -c %a "${base}${host}/private" && journal_replay "$STATECRAFT_JOURNAL" && test ! -e "${base}/tmp" && echo removed`,
      {
        STATECRAFT_JOURNAL: journal,
      },
    );
    expect(made.stdout, made.stderr).toBe("700\nremoved\n");
  });
});
