import { InterruptedError, StowageError } from "./errors.js";

/** The signals that ask a command to stop: each ends the work at a safe point, never half-way. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * Run `work` with SIGINT/SIGTERM/SIGHUP turned into an abort: the first one aborts the signal
 * handed to `work` (reason: an InterruptedError), which stops at its next safe point and cleans up
 * (kills and awaits its children, starts stopped containers). The result is then that
 * InterruptedError (or an error of ours that says more), even if `work` finished anyway. Later
 * signals are only reported.
 */
export async function interruptible<T>(
  work: (signal: AbortSignal) => Promise<T>,
  onSignal?: (signal: NodeJS.Signals, first: boolean) => void,
): Promise<T> {
  const controller = new AbortController();
  const handler = (signal: NodeJS.Signals) => {
    const first = !controller.signal.aborted;
    onSignal?.(signal, first);
    if (first) controller.abort(new InterruptedError(signal));
  };
  for (const signal of STOP_SIGNALS) process.on(signal, handler);
  try {
    const result = await work(controller.signal);
    if (controller.signal.aborted) throw controller.signal.reason;
    return result;
  } catch (error) {
    // Our own errors say more (e.g. which containers stayed stopped); anything else is the signal.
    throw controller.signal.aborted && !(error instanceof StowageError) ? controller.signal.reason : error;
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, handler);
  }
}

/** Throw the abort reason (an InterruptedError) when the work was asked to stop. */
export function throwIfInterrupted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

/** One turn of the event loop: finished I/O, timers and signal handlers run, then the caller. */
export const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Lets timers and signal handlers run during long synchronous work: `due()` is cheap and true once
 * a time slice has passed; `pause()` then yields to the event loop once and throws if the work
 * was interrupted meanwhile. Use: `if (slice.due()) await slice.pause();`
 */
export class TimeSlice {
  private last = performance.now();

  constructor(
    private readonly signal?: AbortSignal,
    private readonly sliceMs = 20,
  ) {}

  due(): boolean {
    return performance.now() - this.last >= this.sliceMs || this.signal?.aborted === true;
  }

  async pause(): Promise<void> {
    await nextTurn();
    this.last = performance.now();
    throwIfInterrupted(this.signal);
  }
}
