#!/usr/bin/env node
// `npm run dist`: build dist/stowage-linux-<arch>, one self-contained executable made from the
// pinned Node 24 as a single executable application (SEA):
//   1. esbuild bundles src/cli/sea-main.ts (every command; a new one in src/cli/tools.ts comes
//      along by itself) into one CommonJS file, with the package version inlined;
//   2. node --experimental-sea-config turns it into a blob with a V8 code cache, carrying the native
//      bcrypt addon as an asset;
//   3. a copy of this node binary, stripped, gets the blob injected with postject.
// Run with the pinned Node (npm scripts do): the blob only works in the node that made it.
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

const ROOT = path.resolve(import.meta.dirname, "..");
const OUT = path.join(ROOT, "dist");
const WORK = path.join(OUT, "sea");
const arch = process.arch === "x64" ? "x64" : process.arch;
const executable = path.join(OUT, `stowage-linux-${arch}`);
const { version } = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));

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

const addon = path.join(ROOT, "node_modules/bcrypt/prebuilds", `linux-${arch}`, "bcrypt.glibc.node");
if (!existsSync(addon)) throw new Error(`no bcrypt prebuild for linux-${arch} at ${addon}`);
copyFileSync(addon, path.join(WORK, "bcrypt.node"));

const seaConfig = path.join(WORK, "sea-config.json");
const blob = path.join(WORK, "stowage.blob");
writeFileSync(
  seaConfig,
  JSON.stringify({
    main: bundle,
    output: blob,
    disableExperimentalSEAWarning: true,
    useCodeCache: true,
    assets: { "bcrypt.node": path.join(WORK, "bcrypt.node") },
  }),
);
execFileSync(process.execPath, ["--experimental-sea-config", seaConfig], { stdio: "inherit" });

rmSync(executable, { force: true });
copyFileSync(process.execPath, executable);
chmodSync(executable, 0o755);
try {
  execFileSync("strip", [executable]);
} catch {
  console.warn("build-sea: strip not found or failed; the executable keeps its symbols (larger)");
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
  `built ${path.relative(ROOT, executable)} (${(size / 1024 / 1024).toFixed(1)} MiB, node ${process.version})`,
);
