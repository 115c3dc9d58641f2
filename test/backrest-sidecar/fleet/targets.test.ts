import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { trustedHostKeys } from "../../../src/backrest-sidecar/fleet/engine.js";
import { hostPrefixes, loadTargets } from "../../../src/backrest-sidecar/fleet/targets.js";

const dir = await mkdtemp(path.join(os.tmpdir(), "stowage-targets-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, text: string): Promise<string> {
  const at = path.join(dir, name);
  await writeFile(at, text);
  return at;
}

describe("--targets", () => {
  it("reads hosts: unix, tcp with TLS, ssh with its key and known_hosts, each with its Backrest", async () => {
    const hosts = await loadTargets(
      await file(
        "fleet.yaml",
        `hosts:
  - name: nas
    docker: unix:///var/run/docker.sock
    backrest: { url: "http://127.0.0.1:9898" }
    socket: /run/stowage/sidecar.sock
  - name: web-1
    docker: tcp://10.0.0.2:2376
    tls: { ca: /etc/stowage/web-1/ca.pem, cert: /etc/stowage/web-1/cert.pem, key: /etc/stowage/web-1/key.pem }
    backrest: { url: "http://10.0.0.2:9898", user: sidecar, passwordFile: /etc/stowage/web-1/backrest }
    volumePrefix: /docker_volumes
    defaults: { repo: offsite, schedule: "0 3 * * *" }
  - name: pi
    docker: ssh://backup@10.0.0.3:2222
    ssh: { identityFile: /etc/stowage/pi/id_ed25519, knownHosts: /etc/stowage/known_hosts }
    backrest: { url: "http://10.0.0.3:9898" }
`,
      ),
    );
    expect(hosts.map((h) => h.name)).toEqual(["nas", "web-1", "pi"]);
    expect(hosts[1]).toMatchObject({ volumePrefix: "/docker_volumes", defaults: { repo: "offsite" } });
  });

  it("refuses what would be unsafe or ambiguous, naming each problem with its place", async () => {
    const bad = await file(
      "bad.yaml",
      `hosts:
  - name: a
    docker: tcp://10.0.0.2:2375
    backrest: { url: "http://x" }
  - name: b
    docker: ssh://u@h
    backrest: { url: "http://y", user: admin }
  - name: c
    docker: tcp://h:2376
    tls: { ca: /ca, cert: /cert, key: /key }
    socket: /run/s.sock
    backrest: { url: "http://z" }
`,
    );
    const message = ((await loadTargets(bad).catch((e: Error) => e)) as Error).message;
    expect(message).toContain("hosts.0: tcp:// needs tls");
    expect(message).toContain("hosts.1: ssh:// needs ssh (identityFile, knownHosts)");
    expect(message).toContain("hosts.1: backrest: user and passwordFile go together");
    expect(message).toContain("hosts.2: socket needs the sidecar on that host");
    const twice = await file(
      "twice.yaml",
      `hosts:\n  - { name: a, docker: "unix:///s", backrest: { url: "http://a" } }\n  - { name: A, docker: "unix:///t", backrest: { url: "http://b" } }\n`,
    );
    await expect(loadTargets(twice)).rejects.toThrow("host A is named twice");
  });

  it("plan-id prefixes carry the host's name only where hosts share a Backrest, and never begin one another", () => {
    const host = (name: string, url: string) => ({ name, docker: "unix:///s", backrest: { url } });
    const prefixes = hostPrefixes(
      [host("web", "http://b1:9898"), host("web_1", "http://b1:9898/"), host("db", "http://b2:9898")],
      "backrest_sidecar_",
    );
    expect(Object.fromEntries(prefixes)).toEqual({
      web: "backrest_sidecar_web.",
      web_1: "backrest_sidecar_web_1.",
      db: "backrest_sidecar_",
    });
  });

  it("an ssh host's trusted keys come from known_hosts as OpenSSH writes it, hashed or not", async () => {
    const keyFile = path.join(dir, "hostkey");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyFile]);
    const pub = readFileSync(`${keyFile}.pub`, "utf8").trim().split(" ");
    const plain = await file(
      "known_plain",
      `[127.0.0.1]:2222 ${pub[0]} ${pub[1]}\nother.example ${pub[0]} AAAA\n`,
    );
    const keys = await trustedHostKeys(plain, "127.0.0.1", 2222);
    expect(keys).toEqual([Buffer.from(pub[1] as string, "base64")]);
    expect(await trustedHostKeys(plain, "127.0.0.1", 22)).toEqual([]);
    const hashed = await file("known_hashed", `[127.0.0.1]:2222 ${pub[0]} ${pub[1]}\n`);
    execFileSync("ssh-keygen", ["-H", "-f", hashed], { stdio: "ignore" });
    expect(readFileSync(hashed, "utf8")).toMatch(/^\|1\|/);
    expect(await trustedHostKeys(hashed, "127.0.0.1", 2222)).toEqual(keys);
  });
});
