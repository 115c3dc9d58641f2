// How the extra engines of lib-engines.mjs are reached besides their unix socket: TLS
// certificates (openssl) for a tcp engine, an sshd of its own with keys (ssh-keygen) for an ssh one.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { chmod, copyFile, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

/** Run a command to the end; resolves its output, rejects with its stderr. */
export function run(command, args, { env, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(" ")}: ${stderr.trim() || error.message}`));
      else resolve({ stdout, stderr });
    });
    child.stdin.end(input);
  });
}

export function commandPath(name) {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin"];
  const found = dirs.map((dir) => path.join(dir, name)).find((candidate) => existsSync(candidate));
  if (!found) throw new Error(`the '${name}' command is missing; run 'npm run setup-host' as root`);
  return found;
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as dockerd and the CLI take them. */
export async function makeTls(dir) {
  mkdirSync(dir, { mode: 0o700 });
  const file = (name) => path.join(dir, name);
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run("openssl", [
    ...["req", "-x509", ...key, "-days", "2", "-subj", "/CN=stowage-test-ca", "-keyout", file("ca-key.pem")],
    ...["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    ...["-out", file("ca.pem")],
  ]);
  const sign = async (keyFile, certFile, subject, extensions) => {
    await writeFile(file("ext.cnf"), extensions);
    const request = ["-subj", subject, "-keyout", file(keyFile), "-out", file("req.csr")];
    await run("openssl", ["req", ...key, ...request]);
    await run("openssl", [
      ...["x509", "-req", "-in", file("req.csr"), "-CA", file("ca.pem"), "-CAkey", file("ca-key.pem")],
      ...["-set_serial", `0x${randomBytes(8).toString("hex")}`, "-days", "2"],
      ...["-extfile", file("ext.cnf"), "-out", file(certFile)],
    ]);
  };
  const server = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
  await sign("server-key.pem", "server-cert.pem", "/CN=localhost", server);
  await sign("key.pem", "cert.pem", "/CN=stowage-test-client", "extendedKeyUsage=clientAuth\n");
  return { dir, ca: file("ca.pem"), cert: file("cert.pem"), key: file("key.pem") };
}

/** An sshd of its own on `port`: root by key only, its sessions' DOCKER_HOST is `socket`. */
export async function makeSsh(dir, port, socket) {
  mkdirSync(path.join(dir, "bin"), { recursive: true, mode: 0o700 });
  const file = (name) => path.join(dir, name);
  for (const key of ["host_key", "user_key"])
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `stowage-test-${key}`, "-f", file(key)]);
  await copyFile(file("user_key.pub"), file("authorized_keys"));
  const hostKey = (await readFile(file("host_key.pub"), "utf8")).split(" ").slice(0, 2).join(" ");
  await writeFile(file("known_hosts"), `[127.0.0.1]:${port} ${hostKey}\n`);
  await writeFile(
    file("sshd_config"),
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${file("host_key")}`,
      `PidFile ${file("sshd.pid")}`,
      `AuthorizedKeysFile ${file("authorized_keys")}`,
      "AuthenticationMethods publickey",
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      // the files live under /tmp, which is world-writable
      "StrictModes no",
      "UseDNS no",
      "PrintMotd no",
      "PrintLastLog no",
      // MaxStartups and MaxSessions keep Debian's defaults, as on a real host.
      `SetEnv DOCKER_HOST=unix://${socket}`,
      "",
    ].join("\n"),
  );
  // The Docker CLI runs plain `ssh`: a wrapper first in PATH gives it this key and known_hosts.
  await writeFile(
    file("ssh_config"),
    [
      "Host *",
      `  IdentityFile ${file("user_key")}`,
      "  IdentitiesOnly yes",
      `  UserKnownHostsFile ${file("known_hosts")}`,
      "  GlobalKnownHostsFile /dev/null",
      "  StrictHostKeyChecking yes",
      "  BatchMode yes",
      "  LogLevel ERROR",
      "",
    ].join("\n"),
  );
  await writeFile(file("bin/ssh"), `#!/bin/sh\nexec ${commandPath("ssh")} -F ${file("ssh_config")} "$@"\n`);
  await chmod(file("bin/ssh"), 0o755);
  return {
    user: "root",
    port,
    privateKey: file("user_key"),
    knownHosts: file("known_hosts"),
    config: file("ssh_config"),
    bin: file("bin"),
    sshdConfig: file("sshd_config"),
    sshdLog: file("sshd.log"),
    hostKeyBlob: Buffer.from(hostKey.split(" ")[1], "base64"),
  };
}
