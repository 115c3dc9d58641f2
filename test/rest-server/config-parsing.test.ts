import { describe, expect, it } from "vitest";
import { mountOptions } from "../../src/rest-server/disk-mount.js";
import { parseListen, socketFromSystemd } from "../../src/rest-server/listen.js";
import { parseQuotaFile } from "../../src/rest-server/quota-config.js";
import { parseDuration, parseSize } from "../../src/rest-server/size.js";

describe("parseSize", () => {
  it.each([
    ["1048576", 1048576],
    ["512MiB", 512 * 1024 ** 2],
    ["10G", 10 * 1024 ** 3],
    ["10GB", 10 * 1000 ** 3],
    ["1.5k", 1536],
    [" 7 ", 7],
    [4096, 4096],
  ])("%j -> %i", (text, bytes) => expect(parseSize(text)).toBe(bytes));

  it.each(["", "ten", "5XB", "-1", "1e3", -5, 1.5])("rejects %j", (text) =>
    expect(parseSize(text)).toBeUndefined(),
  );
});

describe("parseDuration", () => {
  it.each([
    ["90s", 90_000],
    ["30m", 1_800_000],
    ["12h", 43_200_000],
    ["7d", 604_800_000],
    ["2w", 1_209_600_000],
    ["1d12h", 129_600_000],
    ["0s", 0],
  ])("%s -> %i ms", (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(["", "7", "d", "-1d", "7 days", "1y"])("rejects %j", (text) =>
    expect(parseDuration(text)).toBeUndefined(),
  );
});

describe("parseListen", () => {
  it.each([
    [":8000", { kind: "tcp", host: undefined, port: 8000 }],
    ["127.0.0.1:8000", { kind: "tcp", host: "127.0.0.1", port: 8000 }],
    ["[::1]:443", { kind: "tcp", host: "::1", port: 443 }],
    ["localhost:0", { kind: "tcp", host: "localhost", port: 0 }],
    ["unix:/run/rest.sock", { kind: "unix", path: "/run/rest.sock" }],
  ])("%s", (value, target) => expect(parseListen(value)).toEqual(target));

  it.each(["8000", "host:99999", "unix:relative.sock", "::1:80", "host:port"])("rejects %s", (value) => {
    expect(() => parseListen(value)).toThrow(`--listen ${value}`);
  });

  it("uses a systemd socket only when it was passed to this process, and only one", () => {
    expect(socketFromSystemd({ LISTEN_PID: "42", LISTEN_FDS: "1" }, 42)).toEqual({ kind: "fd", fd: 3 });
    expect(socketFromSystemd({ LISTEN_PID: "41", LISTEN_FDS: "1" }, 42)).toBeUndefined();
    expect(socketFromSystemd({}, 42)).toBeUndefined();
    expect(() => socketFromSystemd({ LISTEN_PID: "42", LISTEN_FDS: "2" }, 42)).toThrow("exactly one");
  });
});

describe("parseQuotaFile", () => {
  it("reads total, users and repos with sizes", () => {
    const limits = parseQuotaFile(
      "total: 1TiB\nusers:\n  alice: 10GiB\nrepos:\n  /alice/laptop/: 5G\n",
      "q.yaml",
    );
    expect(limits.total).toBe(1024 ** 4);
    expect(limits.users.get("alice")).toBe(10 * 1024 ** 3);
    expect(limits.repos.get("alice/laptop")).toBe(5 * 1024 ** 3);
  });

  it("names the file and the bad entry", () => {
    expect(() => parseQuotaFile("users:\n  bob: lots\n", "q.yaml")).toThrow(
      /q\.yaml: users\.bob: not a size: "lots"/,
    );
    expect(() => parseQuotaFile("limits: 5\n", "q.yaml")).toThrow(/q\.yaml: .*limits/);
    expect(() => parseQuotaFile("users: [", "q.yaml")).toThrow(/q\.yaml: not valid YAML/);
  });
});

describe("mountOptions", () => {
  it("adds device= for every device of a multi-device filesystem", () => {
    expect(mountOptions("compress=zstd", ["/dev/sda", "/dev/sdb"])).toEqual([
      "compress=zstd",
      "device=/dev/sda",
      "device=/dev/sdb",
    ]);
    expect(mountOptions(undefined, ["/dev/sda"])).toEqual([]);
    expect(mountOptions("device=/dev/sda", ["/dev/sda", "/dev/sdb"])).toEqual([
      "device=/dev/sda",
      "device=/dev/sdb",
    ]);
  });
});
