import { describe, expect, it } from "vitest";
import {
  ConfigError,
  ERROR_EXIT_CODES,
  exitCodeFor,
  LockError,
  MountError,
  NotImplementedError,
  UsageError,
} from "../../src/system/errors.js";

describe("error codes", () => {
  it("map to stable exit statuses in one table", () => {
    expect(exitCodeFor(new UsageError("x"))).toBe(2);
    expect(exitCodeFor(new ConfigError("x"))).toBe(1);
    expect(exitCodeFor(new MountError("x"))).toBe(125);
    expect(exitCodeFor(new LockError("x"))).toBe(75);
    expect(exitCodeFor(new NotImplementedError())).toBe(1);
    expect(exitCodeFor(new Error("plain"))).toBe(ERROR_EXIT_CODES.INTERNAL);
    expect(exitCodeFor("thrown string")).toBe(70);
  });

  it("carry their code and class name", () => {
    const error = new MountError("cannot mount");
    expect(error.code).toBe("MOUNT_FAILED");
    expect(error.name).toBe("MountError");
    expect(error).toBeInstanceOf(Error);
  });
});
