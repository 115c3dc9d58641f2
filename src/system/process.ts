import { readFile } from "node:fs/promises";

export interface ProcessStat {
  /** One letter: R, S, D, Z (zombie), X (dead), ... */
  state: string;
  /** Field 22, in clock ticks since boot: tells a process apart from a later one with its PID. */
  startTime: string;
}

/** Parse /proc/PID/stat: the command name (field 2) may hold spaces and parentheses. */
export function parseProcessStat(text: string): ProcessStat | undefined {
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const [state, startTime] = [fields[0], fields[19]];
  if (!state || !startTime) return undefined;
  return { state, startTime };
}

export async function processStat(pid: number): Promise<ProcessStat | undefined> {
  try {
    return parseProcessStat(await readFile(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

/** A process's start time, to tell it apart from a reused PID. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  return (await processStat(pid))?.startTime;
}

/**
 * The recorded process still runs: same PID and start time, and not a zombie (Z) or dead (X).
 * A run killed as a whole stays as zombies until something reaps them (in a container whose PID 1
 * does not reap, forever), and a zombie holds no mount or namespace.
 */
export async function processAlive(pid: number, startTime: string): Promise<boolean> {
  const stat = await processStat(pid);
  return stat !== undefined && stat.startTime === startTime && stat.state !== "Z" && stat.state !== "X";
}
