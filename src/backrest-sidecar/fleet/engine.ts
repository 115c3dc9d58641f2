import { createHmac } from "node:crypto";
import { readFile } from "node:fs/promises";
import Docker from "dockerode";
import { ConfigError } from "../../system/errors.js";
import type { HostTarget } from "./targets.js";

/** A request to a remote engine that takes longer than this is a failure of that host. */
const ENGINE_TIMEOUT_MS = 30_000;

async function readSecret(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new ConfigError(
      `cannot read ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/** The known_hosts names of a host as OpenSSH writes them: `host`, or `[host]:port` off port 22. */
function knownNames(host: string, port: number): string[] {
  return port === 22 ? [host] : [`[${host}]:${port}`];
}

/** Does one known_hosts host field (plain, comma list, or `|1|salt|hash`) name this host? */
function matches(field: string, names: readonly string[]): boolean {
  if (field.startsWith("|1|")) {
    const [, , salt, hash] = field.split("|");
    return names.some(
      (name) =>
        createHmac("sha1", Buffer.from(salt ?? "", "base64"))
          .update(name)
          .digest("base64") === hash,
    );
  }
  return field.split(",").some((entry) => names.includes(entry));
}

/**
 * The host keys known_hosts trusts for this host (raw key blobs): what ssh2's hostVerifier
 * compares the server's key against. An ssh engine is used only when its key is one of them.
 */
export async function trustedHostKeys(file: string, host: string, port: number): Promise<Buffer[]> {
  const names = knownNames(host, port);
  const keys: Buffer[] = [];
  for (const line of (await readSecret(file, "ssh.knownHosts")).toString("utf8").split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 3 || fields[0]?.startsWith("#") || fields[0]?.startsWith("@")) continue;
    if (matches(fields[0] as string, names)) keys.push(Buffer.from(fields[2] as string, "base64"));
  }
  return keys;
}

/**
 * A Docker client for one host: a Unix socket; TCP with TLS (CA, client cert and key, as the
 * Docker CLI's --tlsverify takes them; the server's certificate checked against the CA and the
 * host name); or ssh (`docker system dial-stdio` on the host, as the Docker CLI does), with the
 * user's key and the host key checked against known_hosts. Secrets are read from their files.
 */
export async function engineClient(target: HostTarget): Promise<Docker> {
  const url = new URL(target.docker);
  if (url.protocol === "unix:") return new Docker({ socketPath: url.pathname, timeout: ENGINE_TIMEOUT_MS });
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (url.protocol === "tcp:") {
    const tls = target.tls as NonNullable<HostTarget["tls"]>;
    return new Docker({
      host,
      port: Number(url.port || 2376),
      protocol: "https",
      ca: await readSecret(tls.ca, "tls.ca"),
      cert: await readSecret(tls.cert, "tls.cert"),
      key: await readSecret(tls.key, "tls.key"),
      timeout: ENGINE_TIMEOUT_MS,
    });
  }
  const ssh = target.ssh as NonNullable<HostTarget["ssh"]>;
  const port = Number(url.port || 22);
  const trusted = await trustedHostKeys(ssh.knownHosts, host, port);
  if (trusted.length === 0)
    throw new ConfigError(
      `${ssh.knownHosts} has no key for ${knownNames(host, port)[0]}: add it (ssh-keyscan, then check it)`,
    );
  return new Docker({
    protocol: "ssh",
    host,
    port,
    username: decodeURIComponent(url.username),
    sshOptions: {
      privateKey: await readSecret(ssh.identityFile, "ssh.identityFile"),
      readyTimeout: ENGINE_TIMEOUT_MS,
      hostVerifier: (key: Buffer) => trusted.some((k) => k.equals(key)),
    },
    // No request timeout here: docker-modem sets it on the socket, and an ssh channel has none
    // (readyTimeout bounds the connection instead).
  } as Docker.DockerOptions);
}
