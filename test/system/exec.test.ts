import { describe, expect, it } from "vitest";
import { exitCodeFor } from "../../src/system/errors.js";
import { ExecError, run } from "../../src/system/exec.js";

describe("run", () => {
  it("passes arguments as an array, never through a shell", async () => {
    const result = await run("printf", ["%s|", "a b", "$(echo no)", "'q'"]);
    expect(result).toEqual({ stdout: "a b|$(echo no)|'q'|", stderr: "", status: 0 });
  });

  it("feeds stdin and captures stderr", async () => {
    const result = await run("sh", ["-c", "cat; echo oops >&2"], { input: "in\n" });
    expect(result.stdout).toBe("in\n");
    expect(result.stderr).toBe("oops\n");
  });

  it("throws a typed error carrying the exit status and stderr", async () => {
    const failure = await run("sh", ["-c", "echo broken >&2; exit 3"]).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ExecError);
    const error = failure as ExecError;
    expect(error.status).toBe(3);
    expect(error.stderr).toBe("broken\n");
    expect(error.code).toBe("EXEC_FAILED");
    expect(error.message).toBe("sh -c 'echo broken >&2; exit 3': exit status 3: broken");
  });

  it("accepts listed non-zero statuses", async () => {
    expect((await run("sh", ["-c", "exit 1"], { okStatuses: [0, 1] })).status).toBe(1);
  });

  it("reports a missing program as command-not-found (exit 127)", async () => {
    const error = (await run("stowage-no-such-program", []).catch((e: unknown) => e)) as ExecError;
    expect(error.code).toBe("COMMAND_NOT_FOUND");
    expect(exitCodeFor(error)).toBe(127);
  });

  it("reports death by signal", async () => {
    const error = (await run("sh", ["-c", "kill -TERM $$"]).catch((e: unknown) => e)) as ExecError;
    expect(error.signal).toBe("SIGTERM");
    expect(error.message).toContain("killed by SIGTERM");
  });

  it("writes a quoted trace line before running", async () => {
    const lines: string[] = [];
    await run("true", ["x y", "z"], { trace: (line) => lines.push(line) });
    expect(lines).toEqual(["+ true 'x y' z"]);
  });
});
