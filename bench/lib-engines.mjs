// Extra, isolated Docker engines on this machine, for the fleet tests (test/support/engines.ts wraps
// this module with types) and benchmarks. Each is a real dockerd with its own data-root, exec-root,
// pidfile, unix socket and managed containerd, run in a network namespace of its own: Debian's
// dockerd 20.10 started with --bridge=none deletes the docker0 of the namespace it runs in, which
// would break every bridged container of the host's engine. It keeps the host's mount namespace
// (like dockerd on a real host: it sees mounts made later, and the host sees its mounts).
// kind "tls": also listens on a host loopback port with --tlsverify (certificates made with openssl);
// the listening socket is made in the host's namespace by systemd-socket-activate and handed over as
// -H fd://, so no relay is needed. kind "ssh": an sshd of its own on a loopback port whose sessions
// get DOCKER_HOST pointing at this engine, as `docker -H ssh://` and dockerode's ssh2 reach it.
// Root only.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { connect } from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Docker from "dockerode";
import { freePort } from "./lib.mjs";
import { commandPath, makeSsh, makeTls, run } from "./lib-engine-access.mjs";

export const TEST_IMAGE = "stowage-test/busybox:1";
const DEFAULT_SOCKET = "/var/run/docker.sock";
const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 60_000;

function connects(port) {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function ping(socketPath) {
  return new Promise((resolve) => {
    const request = http.get({ socketPath, path: "/_ping", timeout: 5000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.once("error", () => resolve(false));
    request.once("timeout", () => request.destroy());
  });
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Wait for a child to be reaped, SIGKILL after `ms`. */
async function ended(child, ms) {
  if (exited(child)) return;
  const done = new Promise((resolve) => child.once("exit", resolve));
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  await done;
  clearTimeout(timer);
}

async function processes() {
  const table = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8")).replaceAll("\0", " ");
      table.push({ pid: Number(entry), ppid, cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return table;
}

function descendants(table, root) {
  const found = [];
  for (let parents = new Set([root]); parents.size > 0; ) {
    const children = table.filter((p) => parents.has(p.ppid)).map((p) => p.pid);
    found.push(...children);
    parents = new Set(children);
  }
  return found;
}

function killPids(pids) {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

function tail(file, lines = 15) {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

class Engine {
  #dockerd;
  #sshd;
  #port;

  constructor({ name, dir, netns, kind, port }) {
    this.name = name;
    this.kind = kind;
    this.dir = dir;
    this.netns = netns;
    this.#port = port;
    this.socket = path.join(dir, "docker.sock");
    this.dataRoot = path.join(dir, "data");
    this.execRoot = path.join(dir, "run");
    this.pidfile = path.join(dir, "dockerd.pid");
    this.log = path.join(dir, "dockerd.log");
    this.tls = undefined;
    this.ssh = undefined;
  }

  /** The address as a user writes it in a targets file or DOCKER_HOST. */
  get host() {
    if (this.kind === "tls") return `tcp://127.0.0.1:${this.#port}`;
    if (this.kind === "ssh") return `ssh://root@127.0.0.1:${this.#port}`;
    return `unix://${this.socket}`;
  }

  /** Global docker CLI flags and environment that reach `host` the way a user's would. */
  get hostArgs() {
    if (!this.tls) return ["-H", this.host];
    const { ca, cert, key } = this.tls;
    return ["-H", this.host, "--tlsverify", "--tlscacert", ca, "--tlscert", cert, "--tlskey", key];
  }

  get hostEnv() {
    return this.ssh ? { PATH: `${this.ssh.bin}:${process.env.PATH}` } : {};
  }

  get pid() {
    return this.#dockerd?.pid;
  }

  get running() {
    return this.#dockerd !== undefined && !exited(this.#dockerd);
  }

  #dockerdArgv() {
    const argv = [
      ...["nsenter", `--net=/run/netns/${this.netns}`, "dockerd"],
      ...["--data-root", this.dataRoot, "--exec-root", this.execRoot, "--pidfile", this.pidfile],
      ...["--config-file", path.join(this.dir, "daemon.json"), "-H", `unix://${this.socket}`],
      ...["--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false"],
      // dockerd 20.10 uses a system containerd (/run/containerd/containerd.sock) when there is one
      ...["--containerd-namespace", this.netns, "--containerd-plugins-namespace", `${this.netns}-plugins`],
    ];
    if (!this.tls) return argv;
    const server = (name) => path.join(this.tls.dir, name);
    argv.push("-H", "fd://", "--tlsverify", "--tlscacert", this.tls.ca);
    argv.push("--tlscert", server("server-cert.pem"), "--tlskey", server("server-key.pem"));
    return ["systemd-socket-activate", "-l", `127.0.0.1:${this.#port}`, ...argv];
  }

  /** Start dockerd (again: same data, sockets and port) and wait until it answers. */
  async start({ timeoutMs = START_TIMEOUT_MS } = {}) {
    if (this.running) throw new Error(`engine ${this.name}: dockerd is already running`);
    const log = openSync(this.log, "a");
    const [command, ...args] = this.#dockerdArgv();
    const child = spawn(command, args, { stdio: ["ignore", log, log] });
    closeSync(log);
    this.#dockerd = child;
    const deadline = Date.now() + timeoutMs;
    // systemd-socket-activate starts dockerd on the port's first connection
    let activated = !this.tls;
    while (!exited(child) && Date.now() < deadline) {
      if (!activated) activated = await connects(this.#port);
      if (activated && (await ping(this.socket))) return;
      await sleep(100);
    }
    const why = exited(child)
      ? `exited (${child.exitCode ?? child.signalCode})`
      : `no answer in ${timeoutMs} ms`;
    await this.kill9();
    throw new Error(`engine ${this.name}: dockerd ${why}; ${this.log}:\n${tail(this.log)}`);
  }

  /** SIGTERM, as a service manager stops it. */
  async stop() {
    await this.#end("SIGTERM");
  }

  /** SIGKILL dockerd (its managed containerd dies with it; the containers' shims live on). */
  async kill9() {
    await this.#end("SIGKILL");
  }

  /**
   * Signal dockerd, wait until it is reaped, then until its containerd is gone too: a dockerd
   * started while the old containerd's PID still exists (dying, or a zombie not yet reaped by
   * PID 1) waits for that containerd's socket and fails.
   */
  async #end(signal) {
    const child = this.#dockerd;
    if (!child || exited(child)) return;
    const containerd = Number(
      await readFile(path.join(this.execRoot, "containerd", "containerd.pid"), "utf8").catch(() => ""),
    );
    child.kill(signal);
    await ended(child, STOP_TIMEOUT_MS);
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (containerd > 0 && existsSync(`/proc/${containerd}`) && Date.now() < deadline) await sleep(50);
  }

  /** dockerode on the engine's unix socket. */
  client() {
    return new Docker({ socketPath: this.socket });
  }

  /**
   * dockerode through `host` as a remote client reaches it: TLS with the client certificate, or ssh
   * (ssh2) with the user key and the host key pinned. DOCKER_HOST, when set, overrides sshOptions.
   */
  remoteClient() {
    if (this.tls) {
      const [ca, cert, key] = [this.tls.ca, this.tls.cert, this.tls.key].map((f) => readFileSync(f));
      return new Docker({ protocol: "https", host: "127.0.0.1", port: this.#port, ca, cert, key });
    }
    if (this.ssh) {
      const expected = this.ssh.hostKeyBlob;
      return new Docker({
        protocol: "ssh",
        host: "127.0.0.1",
        port: this.#port,
        username: this.ssh.user,
        sshOptions: {
          privateKey: readFileSync(this.ssh.privateKey),
          hostVerifier: (key) => expected.equals(key),
        },
      });
    }
    return this.client();
  }

  /** The docker CLI against this engine: through its unix socket, or through `host` (TLS, ssh). */
  docker(args, { through = "socket", input } = {}) {
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("DOCKER_")));
    const global = through === "host" ? this.hostArgs : ["-H", `unix://${this.socket}`];
    return run("docker", [...global, ...args], {
      env: { ...env, ...(through === "host" ? this.hostEnv : {}) },
      input,
    });
  }

  /** Copy an image from the host's default engine (docker save | docker load, through the API). */
  async loadImage(image = TEST_IMAGE) {
    const source = new Docker({ socketPath: DEFAULT_SOCKET });
    let tar;
    try {
      tar = await source.getImage(image).get();
    } catch (error) {
      throw new Error(
        `image ${image} is not on the default engine (make it with ensureTestImage of test/support/docker.ts): ${error.message}`,
      );
    }
    const target = this.client();
    const progress = await target.loadImage(tar);
    await new Promise((resolve, reject) =>
      target.modem.followProgress(progress, (error) => (error ? reject(error) : resolve())),
    );
  }

  /**
   * Create (not start) `count` containers `<prefix>-<i>` running `sleep 3600`, no network, with
   * `labels` (or labels(i)); resolves their ids in order.
   */
  async createContainers(
    count,
    { labels = {}, prefix = this.name, image = TEST_IMAGE, concurrency = 16, binds = [] } = {},
  ) {
    const docker = this.client();
    const ids = new Array(count);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < count; i = next++) {
        const container = await docker.createContainer({
          name: `${prefix}-${i}`,
          Image: image,
          Cmd: ["sleep", "3600"],
          Labels: typeof labels === "function" ? labels(i) : labels,
          HostConfig: { NetworkMode: "none", Binds: binds },
        });
        ids[i] = container.id;
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
    return ids;
  }

  async startSshd() {
    const log = openSync(this.ssh.sshdLog, "a");
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // Debian's sshd privilege separation directory
    this.#sshd = spawn(commandPath("sshd"), ["-D", "-e", "-f", this.ssh.sshdConfig], {
      stdio: ["ignore", log, log],
    });
    closeSync(log);
    for (const deadline = Date.now() + START_TIMEOUT_MS; !(await connects(this.#port)); await sleep(100)) {
      if (exited(this.#sshd) || Date.now() > deadline)
        throw new Error(`engine ${this.name}: sshd did not listen on ${this.#port}`);
    }
  }

  /**
   * Remove everything: the engine's containers (through dockerd, or with runc when dockerd is
   * down), dockerd, sshd and their sessions, stray shims and mounts under the engine's directory,
   * the network namespace, the directory. Throws naming what could not be undone.
   */
  async close() {
    const problems = [];
    const attempt = async (what, action) => {
      try {
        await action();
      } catch (error) {
        problems.push(`${what}: ${error.message}`);
      }
    };
    if (this.#sshd) {
      const sshd = this.#sshd;
      await attempt("stop sshd", async () => {
        killPids(descendants(await processes(), sshd.pid));
        sshd.kill("SIGTERM");
        await ended(sshd, 10_000);
      });
    }
    if (this.running)
      await attempt("remove containers", async () => {
        const docker = this.client();
        const containers = await docker.listContainers({ all: true });
        await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
      });
    await attempt("stop dockerd", () => this.stop());
    await attempt("end leftover processes", () => this.#endLeftovers());
    await attempt("unmount leftovers", () => this.#unmountLeftovers());
    await attempt("delete the network namespace", () => run("ip", ["netns", "delete", this.netns]));
    await attempt("remove the directory", () => rm(this.dir, { recursive: true, force: true }));
    if (problems.length > 0) throw new Error(`engine ${this.name} cleanup: ${problems.join("; ")}`);
  }

  /** Containers dockerd could not remove (runc state), then shims and anything else of ours. */
  async #endLeftovers() {
    const runcRoot = path.join(this.execRoot, "runtime-runc", this.netns);
    if (existsSync(runcRoot))
      for (const id of await readdir(runcRoot))
        await run("runc", ["--root", runcRoot, "delete", "--force", id]).catch(() => undefined);
    const { stdout } = await run("ip", ["netns", "pids", this.netns]).catch(() => ({ stdout: "" }));
    const inNetns = stdout.split(/\s+/).filter(Boolean).map(Number);
    const mentioning = (await processes())
      .filter((p) => p.cmdline.includes(`${this.dir}/`))
      .map((p) => p.pid);
    killPids([...new Set([...inNetns, ...mentioning])].filter((pid) => pid !== process.pid));
  }

  async #unmountLeftovers() {
    const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
    const targets = mountinfo
      .split("\n")
      .map((line) => line.split(" ")[4])
      .filter((target) => target?.startsWith(`${this.dir}/`))
      .sort((a, b) => b.length - a.length);
    for (const target of targets) await run("umount", ["-l", target]);
  }
}

/**
 * A new engine, started. kind: "unix" (default), "tls" or "ssh"; parent: where its directory goes
 * (os.tmpdir() by default; the data-root's filesystem decides the storage driver); image: copied
 * from the default engine after start (false: none). Cleans up after itself if it fails to start.
 */
export async function startEngine({ kind = "unix", name, parent = os.tmpdir(), image = TEST_IMAGE } = {}) {
  if (!["unix", "tls", "ssh"].includes(kind)) throw new Error(`unknown engine kind: ${kind}`);
  const id = `${process.pid}-${randomBytes(3).toString("hex")}`;
  const dir = await mkdtemp(path.join(parent, "stowage-engine-"));
  const netns = `stowage-engine-${id}`;
  const port = kind === "unix" ? undefined : await freePort();
  const engine = new Engine({ name: name ?? `engine-${id}`, dir, netns, kind, port });
  try {
    await writeFile(
      path.join(dir, "daemon.json"),
      JSON.stringify({ "deprecated-key-path": `${dir}/key.json` }),
    );
    await run("ip", ["netns", "add", netns]);
    await run("ip", ["-n", netns, "link", "set", "lo", "up"]);
    if (kind === "tls") engine.tls = await makeTls(path.join(dir, "tls"));
    if (kind === "ssh") engine.ssh = await makeSsh(path.join(dir, "ssh"), port, engine.socket);
    await engine.start();
    if (engine.ssh) await engine.startSshd();
    if (image) await engine.loadImage(image);
    return engine;
  } catch (error) {
    await engine.close().catch(() => undefined);
    throw error;
  }
}

/** `count` engines, started `concurrency` at a time. */
export async function startEngines(count, { concurrency = 4, ...options } = {}) {
  const engines = [];
  try {
    for (let i = 0; i < count; i += concurrency) {
      const batch = Array.from({ length: Math.min(concurrency, count - i) }, (_, k) =>
        startEngine({ ...options, name: `${options.name ?? "engine"}-${i + k}` }),
      );
      const settled = await Promise.allSettled(batch);
      engines.push(...settled.filter((s) => s.status === "fulfilled").map((s) => s.value));
      const failed = settled.find((s) => s.status === "rejected");
      if (failed) throw failed.reason;
    }
    return engines;
  } catch (error) {
    await closeEngines(engines).catch(() => undefined);
    throw error;
  }
}

export async function closeEngines(engines) {
  const results = await Promise.allSettled(engines.map((engine) => engine.close()));
  const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason.message);
  if (failures.length > 0) throw new Error(failures.join("\n"));
}
