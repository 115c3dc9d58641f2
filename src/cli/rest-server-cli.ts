import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Option } from "commander";
import { diskSpecFrom, mountDisk } from "../rest-server/disk-mount.js";
import type { MirrorOptions } from "../rest-server/mirror/start-mirror.js";
import { type ServerOptions, startServer } from "../rest-server/server.js";
import { parseDuration, parseSize } from "../rest-server/size.js";
import { ConfigError } from "../system/errors.js";
import { createLogger } from "../system/log.js";
import { output } from "./output.js";
import { newProgram, parseSeconds } from "./program.js";
import { addTasks } from "./rest-server-tasks-cli.js";

interface Flags {
  path: string;
  storage?: string;
  s3Endpoint?: string;
  s3RedirectReads?: string | true;
  instances: string;
  mirror?: string;
  mirrorS3Endpoint?: string;
  mirrorS3Profile?: string;
  mirrorDeletesAfter?: string;
  mirrorQueue?: string;
  mirrorLagWarn: string;
  mirrorConcurrency: string;
  mirrorMaxDefer: string;
  usageRefresh?: string;
  listen: string;
  auth: boolean;
  htpasswdFile?: string;
  proxyAuthUsername?: string;
  privateRepos?: boolean;
  appendOnly?: boolean;
  maintenanceUser?: string;
  maintain?: string;
  maxSize?: string;
  quotaFile?: string;
  prometheus?: boolean;
  prometheusNoAuth?: boolean;
  tls?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsMinVer: "1.2" | "1.3";
  debug?: boolean;
  log?: string;
  verifyUpload: boolean;
  groupAccessibleRepos?: boolean;
  cpuProfile?: string;
  mountSource?: string;
  mountTarget?: string;
  mountFstype?: string;
  mountData?: string;
  mountTimeout: string;
  shutdownGrace: string;
}

function program() {
  return newProgram(
    "rest-server",
    "restic REST backend server (drop-in for restic/rest-server).",
    "-v, --version",
  )
    .option("--path <dir>", "data directory", path.join(os.tmpdir(), "restic"))
    .option(
      "--storage <url>",
      "s3://BUCKET[/PREFIX]: keep the repositories in an S3 bucket (credentials and region from the AWS environment/config chain) instead of under --path",
    )
    .option(
      "--s3-endpoint <url>",
      "an S3-compatible endpoint such as Ceph RGW or MinIO, path-style [env AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL]",
    )
    .option(
      "--s3-redirect-reads [url]",
      "answer reads of data blobs with a redirect to a signed URL, so the bytes go from S3 to the client directly (signed for this endpoint the clients reach; default: --s3-endpoint)",
    )
    .option(
      "--mirror <dir|s3-url>",
      "copy every stored object (not locks) to this second storage, a directory or s3://BUCKET[/PREFIX], through a durable queue; it stays a valid repository and keeps what the primary loses",
    )
    .option(
      "--mirror-s3-endpoint <url>",
      "the mirror's S3-compatible endpoint (path-style), as --s3-endpoint",
    )
    .option(
      "--mirror-s3-profile <name>",
      "the AWS profile with the mirror's credentials (default: the standard chain)",
    )
    .option(
      "--mirror-deletes-after <duration>",
      "propagate deletes of data, index and snapshots to the mirror once they are this old (e.g. 30d); default: never",
    )
    .option("--mirror-queue <dir>", "where the mirror's queue is kept (default: <path>/.mirror-queue)")
    .option("--mirror-lag-warn <seconds>", "log a warning once the oldest queued copy is this old", "60")
    .option("--mirror-concurrency <n>", "copies to the mirror at a time", "2")
    .option(
      "--mirror-max-defer <seconds>",
      "copies wait while clients upload, at most this long (then one at a time)",
      "30",
    )
    .option(
      "--instances <n>",
      "servers sharing the storage; each admits 1/n of a quota's free room between scans",
      "1",
    )
    .option(
      "--usage-refresh <seconds>",
      "re-list the storage for quotas and metrics this often (default: 60 with --storage, else never)",
    )
    .option("--listen <addr>", "listen address: host:port, :port or unix:/path", ":8000")
    .option("--no-auth", "disable .htpasswd authentication")
    .option("--htpasswd-file <file>", "location of .htpasswd file (default: <path>/.htpasswd)")
    .option(
      "--proxy-auth-username <header>",
      "HTTP header carrying the user name from a trusted reverse proxy",
    )
    .option("--private-repos", "users can only access their own /<user>/ repositories")
    .option("--append-only", "enable append-only mode: only locks may be deleted")
    .option(
      "--maintenance-user <name>",
      "the one user who may delete in append-only mode and reach every repository: the identity of 'rest-server maintain'",
    )
    .option(
      "--maintain <file>",
      "run the maintain file's forget/prune/check on its schedules inside this server (implies --maintenance-user of its user)",
    )
    .option("--max-size <bytes>", "maximum size of the whole repository path (e.g. 1099511627776, 500GiB)")
    .option("--quota-file <file>", "per-user / per-repository limits (YAML: total, users, repos)")
    .option("--prometheus", "enable Prometheus metrics at /metrics")
    .option("--prometheus-no-auth", "disable auth for /metrics")
    .option("--tls", "turn on TLS support")
    .option("--tls-cert <file>", "TLS certificate path (default: <path>/public_key)")
    .option("--tls-key <file>", "TLS key path (default: <path>/private_key)")
    .addOption(
      new Option("--tls-min-ver <version>", "minimum TLS version").choices(["1.2", "1.3"]).default("1.2"),
    )
    .option("--debug", "output debug messages")
    .option("--log <file>", "write access log in Combined Log Format to file, '-' for stdout")
    .option("--no-verify-upload", "do not verify the SHA-256 of uploaded blobs")
    .option("--group-accessible-repos", "let filesystem group access repo files (0770/0660)")
    .option("--cpu-profile <file>", "accepted for compatibility; use node --cpu-prof instead")
    .option("--mount-source <dev>", "mount this device (path or UUID=...) before serving [env MNT_SOURCE]")
    .option("--mount-target <dir>", "where to mount it [env MNT_TARGET]")
    .option("--mount-fstype <type>", "its filesystem type [env MNT_FSTYPE]")
    .option(
      "--mount-data <options>",
      "mount options/data, e.g. device=/dev/sda,device=/dev/sdb [env MNT_DATA]",
    )
    .option("--mount-timeout <seconds>", "wait this long for the device to appear and mount", "60")
    .option("--shutdown-grace <seconds>", "time in-flight requests get on SIGINT/SIGTERM", "30")
    .allowExcessArguments(false);
}

function serverOptions(flags: Flags): ServerOptions {
  const maxSize = flags.maxSize === undefined ? undefined : parseSize(flags.maxSize);
  if (flags.maxSize !== undefined && maxSize === undefined) {
    throw new ConfigError(`--max-size ${flags.maxSize}: expected a byte count such as 1073741824 or 1GiB`);
  }
  const instances = Number(flags.instances);
  if (!Number.isSafeInteger(instances) || instances < 1)
    throw new ConfigError(`--instances ${flags.instances}: expected a whole number of at least 1`);
  if (flags.storage === undefined && flags.s3Endpoint !== undefined)
    throw new ConfigError("--s3-endpoint needs --storage s3://BUCKET[/PREFIX]");
  if (flags.storage === undefined && flags.s3RedirectReads !== undefined)
    throw new ConfigError("--s3-redirect-reads needs --storage s3://BUCKET[/PREFIX]");
  const redirectTo = flags.s3RedirectReads === true ? undefined : flags.s3RedirectReads;
  if (redirectTo !== undefined && !/^https?:\/\/[^/]/.test(redirectTo))
    throw new ConfigError(
      `--s3-redirect-reads ${redirectTo}: expected the endpoint's URL (http:// or https://)`,
    );
  const root = path.resolve(flags.path);
  return {
    path: root,
    mirror: mirrorOptions(flags, root),
    storage: flags.storage,
    s3Endpoint: flags.s3Endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL,
    s3RedirectReads: flags.s3RedirectReads === undefined ? undefined : { endpoint: redirectTo },
    instances,
    usageRefreshMs:
      flags.usageRefresh !== undefined
        ? parseSeconds(flags.usageRefresh, "--usage-refresh") * 1000
        : flags.storage !== undefined
          ? 60_000
          : 0,
    listen: flags.listen,
    noAuth: !flags.auth,
    htpasswdFile: flags.htpasswdFile,
    proxyAuthUsername: flags.proxyAuthUsername,
    privateRepos: Boolean(flags.privateRepos),
    appendOnly: Boolean(flags.appendOnly),
    maintenanceUser: flags.maintenanceUser,
    maintain: flags.maintain === undefined ? undefined : path.resolve(flags.maintain),
    maxSize,
    quotaFile: flags.quotaFile,
    prometheus: Boolean(flags.prometheus),
    prometheusNoAuth: Boolean(flags.prometheusNoAuth),
    tls: Boolean(flags.tls),
    tlsCert: flags.tlsCert,
    tlsKey: flags.tlsKey,
    tlsMinVer: flags.tlsMinVer,
    log: flags.log,
    noVerifyUpload: !flags.verifyUpload,
    groupAccessibleRepos: Boolean(flags.groupAccessibleRepos),
    shutdownGraceMs: parseSeconds(flags.shutdownGrace, "--shutdown-grace") * 1000,
  };
}

function mirrorOptions(flags: Flags, root: string): MirrorOptions | undefined {
  const dependents = [
    ["--mirror-s3-endpoint", flags.mirrorS3Endpoint],
    ["--mirror-s3-profile", flags.mirrorS3Profile],
    ["--mirror-deletes-after", flags.mirrorDeletesAfter],
    ["--mirror-queue", flags.mirrorQueue],
  ] as const;
  if (flags.mirror === undefined) {
    const stray = dependents.find(([, value]) => value !== undefined);
    if (stray) throw new ConfigError(`${stray[0]} needs --mirror`);
    return undefined;
  }
  const deletesAfterMs =
    flags.mirrorDeletesAfter === undefined ? undefined : parseDuration(flags.mirrorDeletesAfter);
  if (flags.mirrorDeletesAfter !== undefined && deletesAfterMs === undefined)
    throw new ConfigError(
      `--mirror-deletes-after ${flags.mirrorDeletesAfter}: expected a duration such as 30d, 12h or 1d12h`,
    );
  const concurrency = Number(flags.mirrorConcurrency);
  if (!Number.isSafeInteger(concurrency) || concurrency < 1)
    throw new ConfigError(
      `--mirror-concurrency ${flags.mirrorConcurrency}: expected a whole number of at least 1`,
    );
  const s3 = flags.mirror.startsWith("s3://");
  if (!s3 && (flags.mirrorS3Endpoint !== undefined || flags.mirrorS3Profile !== undefined))
    throw new ConfigError("--mirror-s3-endpoint and --mirror-s3-profile need --mirror s3://BUCKET[/PREFIX]");
  return {
    location: s3 ? flags.mirror : path.resolve(flags.mirror),
    s3Endpoint: flags.mirrorS3Endpoint,
    s3Profile: flags.mirrorS3Profile,
    deletesAfterMs,
    queueDir: path.resolve(flags.mirrorQueue ?? path.join(root, ".mirror-queue")),
    lagWarnMs: parseSeconds(flags.mirrorLagWarn, "--mirror-lag-warn") * 1000,
    concurrency,
    maxDeferMs: parseSeconds(flags.mirrorMaxDefer, "--mirror-max-defer") * 1000,
  };
}

export async function main(argv: string[]): Promise<number> {
  const cli = program();
  let status = 0;
  cli.action(async () => {
    status = await serve(cli.opts<Flags>());
  });
  addTasks(cli, {
    options: () => serverOptions(cli.opts<Flags>()),
    logger: () =>
      createLogger({ name: "rest-server", ...(cli.opts<Flags>().debug ? { level: "debug" } : {}) }),
    exit: (code) => {
      status = code;
    },
  });
  await cli.parseAsync(argv, { from: "user" });
  return status;
}

/** Serve until SIGINT/SIGTERM: the exit status. */
async function serve(flags: Flags): Promise<number> {
  const log = createLogger({ name: "rest-server", ...(flags.debug ? { level: "debug" } : {}) });
  const options = serverOptions(flags);
  const env = process.env;
  const disk = diskSpecFrom({
    source: flags.mountSource ?? env.MNT_SOURCE,
    target: flags.mountTarget ?? env.MNT_TARGET,
    fsType: flags.mountFstype ?? env.MNT_FSTYPE,
    data: flags.mountData ?? env.MNT_DATA,
    timeoutMs: parseSeconds(flags.mountTimeout, "--mount-timeout") * 1000,
  });
  const unmount = disk ? await mountDisk(disk, log) : async () => {};

  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(options, log);
  } catch (error) {
    await unmount().catch(() => {});
    throw error;
  }
  // Signals are handled before anyone is told where to connect.
  const stopped = waitForShutdown(server, unmount, log);
  const { print } = output("rest-server");
  // Upstream's start line, which restic's own test harness and other tooling wait for.
  process.stderr.write(`${goLogTime(new Date())} start server on ${boundAddress(server.address)}\n`);
  print(`rest-server listening on ${server.url}`);
  if (!server.url.startsWith("unix:")) print(`use it with: restic -r rest:${server.url}/<name>/ init`);
  return stopped;
}

/** Go's log prefix: local `YYYY/MM/DD HH:MM:SS`. */
export function goLogTime(date: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}/${two(date.getMonth() + 1)}/${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

/** A listener's address as Go prints net.Addr: `127.0.0.1:8000`, `[::]:8000`, or a socket's path. */
export function boundAddress(address: AddressInfo | string): string {
  if (typeof address === "string") return address;
  return address.family === "IPv6"
    ? `[${address.address}]:${address.port}`
    : `${address.address}:${address.port}`;
}

function waitForShutdown(
  server: Awaited<ReturnType<typeof startServer>>,
  unmount: () => Promise<void>,
  log: ReturnType<typeof createLogger>,
): Promise<number> {
  return new Promise((resolve) => {
    process.on("SIGHUP", () => {
      server.reload().catch((error: unknown) => log.error({ action: "reload", err: error }, "reload failed"));
    });
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log.info({ action: "shutdown", signal }, "shutting down");
      server
        .close()
        .then(unmount)
        .then(
          () => resolve(0),
          (error: unknown) => {
            log.error({ action: "shutdown", err: error }, "shutdown failed");
            resolve(1);
          },
        );
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}
