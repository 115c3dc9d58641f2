import { describe, expect, it } from "vitest";
import { exitCodeFor } from "../../src/system/errors.js";
import { ExecError, run } from "../../src/system/exec.js";
import { useScope } from "../support/scope.js";

describe("run", () => {
  const scope = useScope();

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

  it("never cuts output silently: more than the limit fails, naming the command and the limit", async () => {
    const error = (await run("head", ["-c", "20000000", "/dev/zero"]).catch((e: unknown) => e)) as ExecError;
    expect(error).toBeInstanceOf(ExecError);
    expect(error.message).toContain("printed more than 16777216 bytes");
    const small = await run("head", ["-c", "2000", "/dev/zero"], { maxStdoutBytes: 2000 });
    expect(small.stdout.length).toBe(2000);
    await expect(run("head", ["-c", "2001", "/dev/zero"], { maxStdoutBytes: 2000 })).rejects.toThrow(
      /printed more than 2000 bytes/,
    );
  });

  it("streams stdout, and a stream of input, without holding either whole", async () => {
    let bytes = 0;
    async function* input() {
      for (let i = 0; i < 64; i++) yield Buffer.alloc(1024 * 1024, 0x61);
    }
    const result = await run("cat", [], {
      input: input(),
      onStdout: (chunk) => {
        bytes += chunk.length;
      },
    });
    expect([result.stdout, bytes]).toEqual(["", 64 * 1024 * 1024]);
  });

  it("an abort signals the child, waits for it to end, and rejects with the reason", async () => {
    const controller = new AbortController();
    const started = Date.now();
    const pending = run("sh", ["-c", "trap 'echo got INT; exit 0' INT; while :; do sleep 0.05; done"], {
      signal: controller.signal,
      stopSignal: "SIGINT",
    });
    setTimeout(() => controller.abort(new Error("stop now")), 200);
    await expect(pending).rejects.toThrow("stop now");
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("hands descriptors of ours to the child as fd 3 and on", async () => {
    const { openSync, closeSync, readFileSync } = await import("node:fs");
    const file = `${await scope.tempDir("stowage-exec-fd-")}/out`;
    const fd = openSync(file, "w");
    try {
      await run("sh", ["-c", "echo through-fd-3 >&3"], { fds: [fd] });
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file, "utf8")).toBe("through-fd-3\n");
  });

  it("writes a quoted trace line before running", async () => {
    const lines: string[] = [];
    await run("true", ["x y", "z"], { trace: (line) => lines.push(line) });
    expect(lines).toEqual(["+ true 'x y' z"]);
  });
});
