import { humanSize } from "./human-size.js";

/** Bytes done (of a total when known) and the rate, redrawn on one stderr line; silent off a terminal. */
export function progressMeter(
  label: string,
  total: number | undefined,
  enabled = Boolean(process.stderr.isTTY),
) {
  const started = Date.now();
  let done = 0;
  let lastDraw = 0;
  const draw = () => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const of = total !== undefined ? ` / ${humanSize(total)}` : "";
    process.stderr.write(`\r${label}: ${humanSize(done)}${of}, ${humanSize(done / seconds)}/s   `);
  };
  return {
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
      if (!enabled || lastDraw === 0) return;
      draw();
      process.stderr.write("\n");
    },
  };
}
