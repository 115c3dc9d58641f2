import { lstatSync, readdirSync } from "node:fs";
import { humanSize } from "./human-size.js";

/** Bytes done (of a total when known) and the rate, redrawn on one stderr line; silent off a terminal. */
export function progressMeter(label: string, enabled = Boolean(process.stderr.isTTY)) {
  let total: number | undefined;
  const started = Date.now();
  let done = 0;
  let lastDraw = 0;
  const draw = () => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const of = total !== undefined ? ` / ${humanSize(total)}` : "";
    process.stderr.write(`\r${label}: ${humanSize(done)}${of}, ${humanSize(done / seconds)}/s   `);
  };
  return {
    enabled,
    /** The bytes the whole operation will move, once known. */
    setTotal(bytes: number) {
      total = bytes;
    },
    onBytes(bytes: number) {
      done += bytes;
      if (!enabled) return;
      const now = Date.now();
      if (now - lastDraw >= 250) {
        lastDraw = now;
        draw();
      }
    },
    finish() {
      if (!enabled || done === 0) return;
      draw();
      process.stderr.write("\n");
    },
  };
}

/** Bytes of regular files under these paths (for the progress total; only walked on a terminal). */
export function treeBytes(paths: readonly string[]): number {
  let total = 0;
  const visit = (file: Buffer) => {
    const info = lstatSync(file, { throwIfNoEntry: false });
    if (!info) return;
    if (info.isFile()) total += info.size;
    else if (info.isDirectory())
      for (const name of readdirSync(file, { encoding: "buffer" })) visit(Buffer.concat([file, SLASH, name]));
  };
  for (const file of paths) visit(Buffer.from(file));
  return total;
}

const SLASH = Buffer.from("/");
