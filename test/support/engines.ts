import type Docker from "dockerode";
import { ensureTestImage, TEST_IMAGE } from "./docker.js";
import type { TestScope } from "./scope.js";

// Extra, isolated Docker engines (each its own dockerd in its own network namespace) for tests of
// many hosts. The implementation is bench/lib-engines.mjs, shared with the benchmarks; this file
// gives it types and ties each engine's cleanup to a TestScope.

export type EngineKind = "unix" | "tls" | "ssh";

/** Client-side TLS files, as `docker --tlsverify --tlscacert ca --tlscert cert --tlskey key` takes them. */
export interface EngineTls {
  /** Also usable as DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem. */
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

export interface EngineSsh {
  user: "root";
  port: number;
  /** The user's private key (ed25519, no passphrase). */
  privateKey: string;
  /** `[127.0.0.1]:<port> ssh-ed25519 ...`: the engine's sshd host key. */
  knownHosts: string;
  /** An ssh_config with the key and known_hosts, for `ssh -F`. */
  config: string;
  /** A directory with an `ssh` wrapper using `config`, put first in PATH for the docker CLI. */
  bin: string;
  /** The sshd host key's public blob, to pin it (ssh2's hostVerifier). */
  hostKeyBlob: Buffer;
}

export interface ExtraEngine {
  readonly name: string;
  readonly kind: EngineKind;
  /** Everything of the engine lives below this directory. */
  readonly dir: string;
  readonly socket: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly pidfile: string;
  /** dockerd's (and containerd's) log. */
  readonly log: string;
  /** The network namespace dockerd runs in. */
  readonly netns: string;
  /** As a user writes it in a targets file: unix:///…/docker.sock, tcp://127.0.0.1:PORT, ssh://root@127.0.0.1:PORT. */
  readonly host: string;
  /** Docker CLI global flags reaching `host` (-H, and the TLS flags). */
  readonly hostArgs: string[];
  /** Environment for the docker CLI reaching `host` (PATH with the ssh wrapper). */
  readonly hostEnv: Record<string, string>;
  readonly tls: EngineTls | undefined;
  readonly ssh: EngineSsh | undefined;
  /** The running dockerd's PID. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Start dockerd again on the same data, sockets and port; resolves once it answers. */
  start(options?: { timeoutMs?: number }): Promise<void>;
  /** SIGTERM dockerd and wait for it. */
  stop(): Promise<void>;
  /** SIGKILL dockerd (its containerd dies with it; containers' shims live on) and wait for it. */
  kill9(): Promise<void>;
  /** dockerode on the unix socket. */
  client(): Docker;
  /** dockerode through `host`: https with the client certificate, or ssh with the key and the pinned host key. */
  remoteClient(): Docker;
  /** The docker CLI against this engine, through its socket (default) or through `host`. */
  docker(
    args: string[],
    options?: { through?: "socket" | "host"; input?: string | Buffer },
  ): Promise<{ stdout: string; stderr: string }>;
  /** Copy an image from the default engine. */
  loadImage(image?: string): Promise<void>;
  /** Create (not start) `<prefix>-<i>` containers (`sleep 3600`, no network); their ids in order. */
  createContainers(
    count: number,
    options?: {
      labels?: Record<string, string> | ((index: number) => Record<string, string>);
      prefix?: string;
      image?: string;
      concurrency?: number;
      /** `-v` binds, `host:container`. */
      binds?: string[];
    },
  ): Promise<string[]>;
  /** Remove its containers, dockerd, sshd, namespace and directory (done by the scope). */
  close(): Promise<void>;
}

export interface EngineOptions {
  kind?: EngineKind;
  name?: string;
  /** Parent of the engine's directory (default: the temp dir); its filesystem picks the storage driver. */
  parent?: string;
  /** Load the test image (default true). */
  testImage?: boolean;
}

interface Implementation {
  startEngine(options: {
    kind?: EngineKind;
    name?: string;
    parent?: string;
    image?: string | false;
  }): Promise<ExtraEngine>;
}

// A specifier in a variable: TypeScript takes the module as untyped, its type is the interface above.
const IMPLEMENTATION = "../../bench/lib-engines.mjs";

/**
 * A real, extra dockerd (its own data-root, exec-root, pidfile, socket, containerd, network
 * namespace), with the test image loaded, removed with everything it made when `scope` cleans up.
 * Unix socket engines are reached through the filesystem; "tls" listens on a loopback port with
 * --tlsverify; "ssh" has its own sshd on a loopback port (user root, key only).
 */
export async function startEngine(scope: TestScope, options: EngineOptions = {}): Promise<ExtraEngine> {
  const { testImage = true, ...rest } = options;
  if (testImage) await ensureTestImage(scope);
  const implementation = (await import(IMPLEMENTATION)) as Implementation;
  const engine = await implementation.startEngine({ ...rest, image: testImage ? TEST_IMAGE : false });
  scope.defer(`remove engine ${engine.name} (${engine.dir})`, () => engine.close());
  return engine;
}
