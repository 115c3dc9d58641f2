import { run } from "./exec.js";

/**
 * Every block device carrying a filesystem with this UUID (a multi-device btrfs has several),
 * probed fresh rather than from blkid's cache. Empty when none is attached (yet).
 */
export async function devicesWithUuid(uuid: string): Promise<string[]> {
  // blkid exits 2 when nothing matches.
  const result = await run("blkid", ["-c", "/dev/null", "-t", `UUID=${uuid}`, "-o", "device"], {
    okStatuses: [0, 2],
  });
  return result.stdout
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .sort();
}
