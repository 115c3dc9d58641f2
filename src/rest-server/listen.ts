import { parseHostPort } from "../system/address.js";
import { ConfigError } from "../system/errors.js";

export type ListenTarget =
  | { kind: "tcp"; host: string | undefined; port: number }
  | { kind: "unix"; path: string }
  /** An inherited socket from systemd socket activation. */
  | { kind: "fd"; fd: number };

/** The first fd systemd passes (sd_listen_fds(3)). */
const SD_LISTEN_FDS_START = 3;

/** `--listen` values: `:8000`, `host:port`, `[::1]:8000`, `unix:/run/rest.sock`. */
export function parseListen(value: string): ListenTarget {
  if (value.startsWith("unix:")) {
    const path = value.slice("unix:".length);
    if (!path.startsWith("/"))
      throw new ConfigError(`--listen ${value}: the unix socket path must be absolute`);
    return { kind: "unix", path };
  }
  try {
    return { kind: "tcp", ...parseHostPort(value, "--listen") };
  } catch {
    throw new ConfigError(`--listen ${value}: expected host:port, :port, [ipv6]:port or unix:/path`);
  }
}

/** systemd socket activation: exactly one socket passed to this very process, else none. */
export function socketFromSystemd(env: NodeJS.ProcessEnv, pid: number): ListenTarget | undefined {
  if (env.LISTEN_PID === undefined || Number(env.LISTEN_PID) !== pid) return undefined;
  const count = Number(env.LISTEN_FDS ?? "0");
  if (count === 0) return undefined;
  if (count !== 1) throw new ConfigError(`systemd passed ${count} sockets; rest-server needs exactly one`);
  return { kind: "fd", fd: SD_LISTEN_FDS_START };
}
