import { execFileSync } from "node:child_process";

const SETUP_HINT = "run 'npm run setup-host' as root on Debian/Ubuntu (scripts/setup-host.sh)";

function hasCommand(name: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v "$1"`, "sh", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** What an integration test needs of the host; a missing piece fails the test with a clear message. */
export function requireHost(needs: { root?: boolean; commands?: readonly string[] }): void {
  const missing: string[] = [];
  if (needs.root && process.getuid?.() !== 0) missing.push("root privileges");
  for (const command of needs.commands ?? [])
    if (!hasCommand(command)) missing.push(`the '${command}' command`);
  if (missing.length > 0) {
    throw new Error(`this integration test needs ${missing.join(", ")}; ${SETUP_HINT}`);
  }
}
