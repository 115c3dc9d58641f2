import { describe, expect, it } from "vitest";
import {
  asTarFailure,
  ConfigError,
  ERROR_EXIT_CODES,
  exitCodeFor,
  InterruptedError,
  LockError,
  MountError,
  signalExitStatus,
  UsageError,
} from "../../src/system/errors.js";

describe("error codes", () => {
  it("map to stable exit statuses in one table", () => {
    expect(exitCodeFor(new UsageError("x"))).toBe(2);
    expect(exitCodeFor(new ConfigError("x"))).toBe(1);
    expect(exitCodeFor(new MountError("x"))).toBe(125);
    expect(exitCodeFor(new LockError("x"))).toBe(75);
    expect(exitCodeFor(new Error("plain"))).toBe(ERROR_EXIT_CODES.INTERNAL);
    expect(exitCodeFor("thrown string")).toBe(70);
    // A failed system call is the host's condition (a full disk, a missing directory), not a bug.
    const full = Object.assign(new Error("ENOSPC: no space left on device, write"), {
      code: "ENOSPC",
      syscall: "write",
    });
    expect(exitCodeFor(full)).toBe(1);
    expect(exitCodeFor(Object.assign(new Error("no syscall"), { code: "ENOENT" }))).toBe(70);
  });

  it("an interrupted run exits 128+N for every signal, SIGQUIT included", () => {
    expect(signalExitStatus("SIGINT")).toBe(130);
    expect(signalExitStatus("SIGQUIT")).toBe(131);
    expect(signalExitStatus("SIGTERM")).toBe(143);
    expect(exitCodeFor(new InterruptedError("SIGHUP"))).toBe(129);
  });

  it("snapshotter's failures exit 2 (its 1 means 'some files changed', as GNU tar's)", () => {
    expect(exitCodeFor(asTarFailure(new ConfigError("x")))).toBe(2);
    expect(exitCodeFor(asTarFailure(new LockError("x")))).toBe(75);
    expect(exitCodeFor(asTarFailure(new UsageError("x")))).toBe(2);
    expect(exitCodeFor(asTarFailure(new Error("bug")))).toBe(70);
    expect((asTarFailure(new ConfigError("the message")) as Error).message).toBe("the message");
  });

  it("carry their code and class name", () => {
    const error = new MountError("cannot mount");
    expect(error.code).toBe("MOUNT_FAILED");
    expect(error.name).toBe("MountError");
    expect(error).toBeInstanceOf(Error);
  });
});
