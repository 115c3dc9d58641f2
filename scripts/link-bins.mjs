// Link this package's own commands into node_modules/.bin, so `npx stowage` (and the other
// five) run the built code in this checkout; npm links only dependencies' commands there.
import { mkdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
const binDir = path.join(root, "node_modules", ".bin");
mkdirSync(binDir, { recursive: true });
for (const [name, target] of Object.entries(pkg.bin)) {
  const link = path.join(binDir, name);
  rmSync(link, { force: true });
  symlinkSync(path.relative(binDir, path.join(root, target)), link);
}
