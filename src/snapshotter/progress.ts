/** Bytes done (of a total when known) and the rate, redrawn on one stderr line; silent off a terminal. */
export function progressMeter(
  label: string,
  total: number | undefined,
  enabled = Boolean(process.stderr.isTTY),
) {
  const started = Date.now();
  let done = 0;
  let lastDraw = 0;
  const human = (bytes: number) => {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
  };
  const draw = () => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const of = total !== undefined ? ` / ${human(total)}` : "";
    process.stderr.write(`\r${label}: ${human(done)}${of}, ${human(done / seconds)}/s   `);
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
