import { readFileSync } from "node:fs";

/** Set by the bundler for the self-contained executable (no package.json beside it there). */
declare const __STOWAGE_VERSION__: string | undefined;

/** The package version: inlined in the executable, else read once from package.json (two levels up). */
export const VERSION: string =
  typeof __STOWAGE_VERSION__ === "string"
    ? __STOWAGE_VERSION__
    : (
        JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
          version: string;
        }
      ).version;
