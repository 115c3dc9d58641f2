import { existsSync, readFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { run } from "../../src/system/exec.js";
import { withLock } from "../../src/system/lock.js";
import { TEST_LABEL } from "./docker.js";
import { requireHost } from "./host.js";

const CACHE = path.join(os.tmpdir(), "stowage-test-cache");
export const ROOT = path.resolve(import.meta.dirname, "../..");
/** The base the project's Dockerfile names; made here since no registry can be reached. */
export const BASE_IMAGE = "debian:bookworm-slim";

/** The Debian mirror apt uses on this host (deb822 or one-line sources). */
function mirror(): string {
  for (const file of ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"]) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, "utf8");
    const match = /^URIs:\s*(\S+)/m.exec(text) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm/m.exec(text);
    if (match?.[1]) return match[1];
  }
  return "http://deb.debian.org/debian";
}

/**
 * A minimal Debian root without Node.js (debootstrap --variant=minbase, plus bash, util-linux,
 * mount, btrfs-progs), built once per host and kept in the temp dir's cache.
 */
export async function debianRoot(): Promise<string> {
  requireHost({ root: true, commands: ["debootstrap"] });
  const root = path.join(CACHE, "bookworm-minbase");
  const done = path.join(CACHE, "bookworm-minbase.complete");
  await mkdir(CACHE, { recursive: true });
  return withLock(
    path.join(CACHE, "bookworm-minbase.lock"),
    async () => {
      if (existsSync(done)) return root;
      await rm(root, { recursive: true, force: true });
      await run(
        "debootstrap",
        ["--variant=minbase", "--include=bash,util-linux,mount,btrfs-progs", "bookworm", root, mirror()],
        { timeoutMs: 600_000 },
      );
      await rm(path.join(root, "var/cache/apt/archives"), { recursive: true, force: true });
      await writeFile(done, "");
      return root;
    },
    { timeoutMs: 900_000, pidFile: true },
  );
}

/** `docker import` of that root, tagged as the Dockerfile's base, unless the engine has it. */
export async function ensureBaseImage(): Promise<string> {
  const present = await run("docker", ["image", "inspect", BASE_IMAGE], { okStatuses: [0, 1] });
  if (present.status === 0) return BASE_IMAGE;
  const root = await debianRoot();
  await run("sh", ["-c", 'tar -C "$0" -c . | docker import - "$1"', root, BASE_IMAGE], {
    timeoutMs: 300_000,
  });
  return BASE_IMAGE;
}

/**
 * The project's real Dockerfile, built with the executable from `npm run dist` (the test command
 * builds it first). Images are labelled as ours; the one this replaces is pruned.
 */
export async function buildProjectImage(build: { command?: string; target?: string }): Promise<string> {
  if (!existsSync(path.join(ROOT, "dist", "stowage-linux-x64")) && process.arch === "x64") {
    throw new Error("dist/stowage-linux-x64 is missing: run 'npm run dist' (npm test does)");
  }
  await ensureBaseImage();
  const tag = `stowage-test/${build.target ?? build.command ?? "stowage"}:latest`;
  const args = [
    "build",
    "-q",
    "--label",
    `${TEST_LABEL}=1`,
    "--build-arg",
    `ARCH=${process.arch}`,
    "-t",
    tag,
  ];
  if (build.command) args.push("--build-arg", `COMMAND=${build.command}`);
  if (build.target) args.push("--target", build.target);
  await run("docker", [...args, ROOT], { timeoutMs: 600_000, env: { ...process.env, DOCKER_BUILDKIT: "0" } });
  await run("docker", ["image", "prune", "-f", "--filter", `label=${TEST_LABEL}=1`]);
  return tag;
}
