import type { RecoveryResult } from "./journal.js";

/** What a user must know about dead runs that could not be cleaned up yet: one line each, for stderr. */
export function recoveryProblems(result: RecoveryResult): string[] {
  const lines: string[] = [];
  for (const waiting of result.waiting) {
    const filesystems = waiting.missingFilesystems.join(", ") || "(unknown)";
    lines.push(
      `statecraft: run ${waiting.runId} cannot be cleaned up yet: filesystem ${filesystems} is not attached ` +
        `(disk unplugged?). Its journal is kept and retried by every run and by --recover; ` +
        `to drop it on purpose: statecraft --forget ${waiting.runId}`,
    );
  }
  for (const file of result.failed) lines.push(`statecraft: cleanup incomplete, journal kept: ${file}`);
  return lines;
}
