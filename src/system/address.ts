import { ConfigError } from "./errors.js";

export interface HostPort {
  /** undefined: every address (`:8000`). IPv6 without the brackets. */
  host: string | undefined;
  port: number;
}

/** `host:port`, `:port`, `[::1]:port`; a ConfigError naming the flag otherwise. */
export function parseHostPort(value: string, flag: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535)
    throw new ConfigError(`${flag} ${value}: expected host:port, :port or [ipv6]:port`);
  const host = match[1] ?? match[2];
  return { host: host === "" ? undefined : host, port };
}
