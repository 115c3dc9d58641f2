import { z } from "zod";
import { ConfigError } from "../../system/errors.js";
import { readStructured } from "../../system/structured-file.js";

/** One Docker host of a fleet, as `--targets` names it. */
export interface HostTarget {
  name: string;
  /** `unix:///path`, `tcp://host:port` (with tls), `ssh://user@host[:port]` (with ssh). */
  docker: string;
  tls?: { ca: string; cert: string; key: string };
  ssh?: { identityFile: string; knownHosts: string };
  backrest: { url: string; user?: string; passwordFile?: string };
  dockerRoot?: string;
  volumePrefix?: string;
  defaults?: { repo?: string; schedule?: string; retention?: string };
  repoDefaults?: string;
  /** The sidecar's endpoint on this host (its own engine only: `unix://`), for snapshot and dump plans. */
  socket?: string;
}

const absolute = z.string().refine((p) => p.startsWith("/"), "must be an absolute path");

const host = z
  .object({
    name: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9_-]*$/,
        "letters, digits, '_' and '-' (it names the host in logs and plan ids)",
      ),
    docker: z
      .string()
      .regex(/^(unix:\/\/\/|tcp:\/\/|ssh:\/\/)/, "unix:///path, tcp://host:port or ssh://user@host[:port]"),
    tls: z.object({ ca: absolute, cert: absolute, key: absolute }).strict().optional(),
    ssh: z.object({ identityFile: absolute, knownHosts: absolute }).strict().optional(),
    backrest: z
      .object({
        url: z.string().min(1),
        user: z.string().min(1).optional(),
        passwordFile: absolute.optional(),
      })
      .strict(),
    dockerRoot: absolute.optional(),
    volumePrefix: absolute.optional(),
    defaults: z
      .object({
        repo: z.string().min(1).optional(),
        schedule: z.string().min(1).optional(),
        retention: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    repoDefaults: absolute.optional(),
    socket: absolute.optional(),
  })
  .strict()
  .superRefine((h, ctx) => {
    const scheme = h.docker.slice(0, h.docker.indexOf(":"));
    if (scheme === "tcp" && !h.tls)
      ctx.addIssue({
        code: "custom",
        message:
          "tcp:// needs tls (ca, cert, key): an engine's TCP port without TLS gives root to anyone who reaches it",
      });
    if (scheme !== "tcp" && h.tls) ctx.addIssue({ code: "custom", message: "tls goes with tcp:// only" });
    if (scheme === "ssh" && !h.ssh)
      ctx.addIssue({
        code: "custom",
        message: "ssh:// needs ssh (identityFile, knownHosts): the host key is verified",
      });
    if (scheme !== "ssh" && h.ssh) ctx.addIssue({ code: "custom", message: "ssh goes with ssh:// only" });
    if (scheme !== "unix" && h.socket)
      ctx.addIssue({
        code: "custom",
        message: "socket needs the sidecar on that host: unix:// engines only",
      });
    if ((h.backrest.user === undefined) !== (h.backrest.passwordFile === undefined))
      ctx.addIssue({ code: "custom", message: "backrest: user and passwordFile go together" });
  });

const targetsFile = z.object({ hosts: z.array(host).min(1, "at least one host") }).strict();

/** `--targets` (YAML or JSON): every problem named with its place, host names unique. */
export async function loadTargets(file: string): Promise<HostTarget[]> {
  const { hosts } = await readStructured(file, "--targets", targetsFile);
  const seen = new Set<string>();
  for (const h of hosts) {
    const key = h.name.toLowerCase();
    if (seen.has(key)) throw new ConfigError(`${file}: host ${h.name} is named twice`);
    seen.add(key);
  }
  return hosts;
}

/**
 * The plan-id prefix of each host. Hosts with a Backrest of their own keep the plain prefix (their
 * plans look as with one host). Hosts sharing one Backrest would collide on a service they both
 * run, and each would take the other's plans for its own orphans: their prefix carries the host's
 * name, `<prefix><host>.` (plan ids never contain a dot otherwise, so no host's prefix begins
 * another's).
 */
export function hostPrefixes(hosts: readonly HostTarget[], prefix: string): Map<string, string> {
  const byUrl = new Map<string, number>();
  const url = (h: HostTarget) => h.backrest.url.replace(/\/+$/, "").toLowerCase();
  for (const h of hosts) byUrl.set(url(h), (byUrl.get(url(h)) ?? 0) + 1);
  return new Map(
    hosts.map((h) => [
      h.name,
      (byUrl.get(url(h)) ?? 0) > 1
        ? `${prefix}${h.name.toLowerCase().replace(/[^a-z0-9_]+/g, "_")}.`
        : prefix,
    ]),
  );
}
