import { type MessagePort, Worker } from "node:worker_threads";

/**
 * The body of a worker thread. It is started from its own source text, so it must use nothing but
 * its arguments (no imports, no names of its module): `require` gives it Node's built-in modules,
 * and `lib` is the library function given to startWorker, itself started from its source text.
 */
// biome-ignore lint/complexity/noBannedTypes: any self-contained function serves as a library
export type WorkerBody = (require: NodeJS.Require, port: MessagePort, data: unknown, lib: Function) => void;

/**
 * A worker thread running `body` from its source text (`eval`): this works alike from the compiled
 * files and from the self-contained executable, which has no module files to point a worker at.
 * Its heap is kept small: the work it is given is system calls on shared memory, not objects.
 */
// biome-ignore lint/complexity/noBannedTypes: see WorkerBody
function startWorker(body: WorkerBody, data: unknown, lib?: Function): Worker {
  const code = `const { parentPort, workerData } = require("node:worker_threads");\n(${body.toString()})(require, parentPort, workerData, ${lib ? `(${lib.toString()})` : "undefined"});`;
  return new Worker(code, {
    eval: true,
    workerData: data,
    resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 },
  });
}

/**
 * Requests answered in order by one worker: `ask` posts a message and resolves with the worker's
 * next answer. A worker that fails or exits rejects every open request with that failure.
 */
export class OrderedWorker {
  private readonly worker: Worker;
  private readonly open: Array<{ resolve: (answer: unknown) => void; reject: (error: Error) => void }> = [];
  private failure: Error | undefined;

  // biome-ignore lint/complexity/noBannedTypes: see WorkerBody
  constructor(body: WorkerBody, data: unknown, lib?: Function) {
    this.worker = startWorker(body, data, lib);
    this.worker.on("message", (answer) => this.open.shift()?.resolve(answer));
    this.worker.on("error", (error) => this.fail(error));
    this.worker.on("exit", (code) => this.fail(new Error(`worker thread exited (${code})`)));
  }

  ask(message: unknown, transfer?: readonly ArrayBuffer[]): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    this.worker.postMessage(message, transfer as ArrayBuffer[] | undefined);
    return new Promise((resolve, reject) => this.open.push({ resolve, reject }));
  }

  /** Stop the thread (what it is doing is cut short; callers wait for their answers first). */
  async stop(): Promise<void> {
    this.failure ??= new Error("worker thread stopped");
    await this.worker.terminate();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (let next = this.open.shift(); next; next = this.open.shift()) next.reject(this.failure);
  }
}
