#!/usr/bin/env node
// `npm run dist [-- --arch x64|arm64]`: build dist/stowage-linux-<arch>, one self-contained
// executable made from the pinned Node 24 as a single executable application (SEA). The default
// arch is this machine's; each arch keeps its pieces in dist/sea-<arch>/, so both can be built in
// one checkout.
//   1. esbuild bundles src/cli/sea-main.ts (every command; a new one in src/cli/tools.ts comes
//      along by itself) into one CommonJS file, with the package version inlined;
//   2. `node --experimental-sea-config` of the target's node turns it into a blob with a V8 code
//      cache, carrying the native bcrypt addon as an asset (for arm64 on x64 that node runs under
//      qemu-user; without qemu the blob has no code cache and a warning says so);
//   3. a copy of the target's node binary, stripped, gets the blob injected with postject.
// The target's node is this one for the host's arch, else Node's own build for that arch from npm
// (`node-linux-<arch>`, the version of this node; npm checks the registry's integrity hash). It is
// not a devDependency: npm refuses to install a package made for another CPU.
// Run with the pinned Node (npm scripts do): the blob only works in the node version that made it.
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { build } from "esbuild";
import { shebangFlags } from "./node-flags.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const OUT = path.join(ROOT, "dist");
const ARCHES = {
  x64: { qemu: "qemu-x86_64-static", strip: "x86_64-linux-gnu-strip" },
  arm64: { qemu: "qemu-aarch64-static", strip: "aarch64-linux-gnu-strip" },
};

function argValue(name) {
  const at = process.argv.indexOf(name);
  if (at < 0) return undefined;
  const value = process.argv[at + 1];
  if (value === undefined) throw new Error(`${name} needs a value`);
  return value;
}

const arch = argValue("--arch") ?? process.arch;
if (!(arch in ARCHES)) {
  console.error(`build-sea: --arch ${arch}: expected one of ${Object.keys(ARCHES).join(", ")}`);
  process.exit(2);
}
const native = arch === process.arch;
const WORK = path.join(OUT, `sea-${arch}`);
const executable = path.join(OUT, `stowage-linux-${arch}`);
const { version } = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));

function onPath(command) {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Node's binary for `arch`, from the npm package of this node's version (kept in dist/cache/). */
function foreignNode() {
  const nodeVersion = process.version.slice(1);
  const cache = path.join(OUT, "cache");
  const tarball = path.join(cache, `node-linux-${arch}-${nodeVersion}.tgz`);
  mkdirSync(cache, { recursive: true });
  if (!existsSync(tarball)) {
    execFileSync(
      "npm",
      ["pack", `node-linux-${arch}@${nodeVersion}`, "--pack-destination", cache, "--silent"],
      {
        stdio: ["ignore", "ignore", "inherit"],
      },
    );
  }
  const unpacked = path.join(WORK, "node-package");
  mkdirSync(unpacked, { recursive: true });
  execFileSync("tar", ["-xzf", tarball, "-C", unpacked, "package/bin/node"]);
  return path.join(unpacked, "package/bin/node");
}

rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });

const bundle = path.join(WORK, "stowage.cjs");
await build({
  entryPoints: [path.join(ROOT, "src/cli/sea-main.ts")],
  outfile: bundle,
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node24",
  define: { __STOWAGE_VERSION__: JSON.stringify(version) },
  // bcrypt is loaded from the asset (see src/rest-server/bcrypt-compare.ts); ssh2's optional
  // native speed-ups are tried in a try/catch and simply absent; pino-pretty only serves terminals.
  external: ["bcrypt", "*.node", "cpu-features", "pino-pretty"],
  logLevel: "warning",
  logOverride: { "empty-import-meta": "silent" },
  legalComments: "none",
  minify: true,
});

const targetNode = native ? process.execPath : foreignNode();
const addon = path.join(ROOT, "node_modules/bcrypt/prebuilds", `linux-${arch}`, "bcrypt.glibc.node");
if (!existsSync(addon)) throw new Error(`no bcrypt prebuild for linux-${arch} at ${addon}`);
copyFileSync(addon, path.join(WORK, "bcrypt.node"));

// The code cache is V8's compiled code for the target's CPU, so the target's node makes the blob.
const { qemu, strip } = ARCHES[arch];
const emulated = !native && onPath(qemu) && process.env.STOWAGE_SEA_CODE_CACHE !== "0";
const useCodeCache = native || emulated;
if (!useCodeCache) {
  console.warn(`build-sea: no ${qemu} to run the ${arch} node: the blob has no code cache (slower start)`);
}
const seaConfig = path.join(WORK, "sea-config.json");
const blob = path.join(WORK, "stowage.blob");
writeFileSync(
  seaConfig,
  JSON.stringify({
    main: bundle,
    output: blob,
    disableExperimentalSEAWarning: true,
    useCodeCache,
    execArgv: shebangFlags(),
    assets: { "bcrypt.node": path.join(WORK, "bcrypt.node") },
  }),
);
const [blobMaker, ...blobArgs] = emulated ? [qemu, targetNode] : [process.execPath];
execFileSync(blobMaker, [...blobArgs, "--experimental-sea-config", seaConfig], { stdio: "inherit" });

// The commands the executable answers to, for `make install` (which may not be able to run it).
const commands = execFileSync(process.execPath, [bundle, "--list-commands"], { encoding: "utf8" });
writeFileSync(path.join(WORK, "commands"), commands);

rmSync(executable, { force: true });
copyFileSync(targetNode, executable);
chmodSync(executable, 0o755);
const stripper = native ? "strip" : strip;
try {
  execFileSync(stripper, [executable]);
} catch {
  console.warn(`build-sea: ${stripper} not found or failed; the executable keeps its symbols (larger)`);
}
execFileSync(
  process.execPath,
  [
    path.join(ROOT, "node_modules/postject/dist/cli.js"),
    executable,
    "NODE_SEA_BLOB",
    blob,
    "--sentinel-fuse",
    "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2",
  ],
  { stdio: ["ignore", "ignore", "inherit"] },
);
const size = statSync(executable).size;
console.log(
  `built ${path.relative(ROOT, executable)} (${(size / 1024 / 1024).toFixed(1)} MiB, node ${process.version} ${arch}${useCodeCache ? "" : ", no code cache"})`,
);
