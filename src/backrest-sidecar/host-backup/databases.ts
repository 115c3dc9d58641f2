import { PassThrough, Writable } from "node:stream";
import type Docker from "dockerode";
import { engineCall } from "../../system/docker.js";
import { StowageError } from "../../system/errors.js";
import { run } from "../../system/exec.js";
import type { Workload } from "../workloads/discover.js";
import type { DatabaseEngine } from "../workloads/layout.js";
import { type ResticContext, resticOptions, SummaryReader } from "./restic.js";

/** A dump or a load that failed: the workload fails, nothing half-done is kept. */
export class DatabaseError extends StowageError {
  constructor(message: string) {
    super("EXEC_FAILED", message);
  }
}

/** Shell: print "pid1-is-server" when the container's PID 1 is the server (names as a grep -E pattern). */
const PID1_IS = (names: string) => `grep -Eqx '${names}' /proc/1/comm && echo pid1-is-server`;

interface Client {
  cmd: string[];
  user?: string;
  /** Passwords go to the client in its environment, never on a command line `ps` shows. */
  env: string[];
}

/**
 * How to run the container's own client (so it always matches its server, rcb #30): PostgreSQL as
 * the OS user `postgres` with role `POSTGRES_USER` (default postgres); MariaDB/MySQL as root with
 * the password from `MARIADB_ROOT_PASSWORD` / `MYSQL_ROOT_PASSWORD` given as MYSQL_PWD.
 */
async function client(
  docker: Docker,
  containerId: string,
  engine: DatabaseEngine,
  task: "dump" | "load" | "ping",
): Promise<Client> {
  const info = await engineCall(docker, `inspect container ${containerId}`, () =>
    docker.getContainer(containerId).inspect(),
  );
  const env = new Map(
    (info.Config.Env ?? []).map((entry) => [
      entry.slice(0, entry.indexOf("=")),
      entry.slice(entry.indexOf("=") + 1),
    ]),
  );
  if (engine === "postgres") {
    const role = env.get("POSTGRES_USER") || "postgres";
    const password = env.get("POSTGRES_PASSWORD");
    const cmd = {
      // --clean --if-exists: loading it drops and recreates every database, so a restore into a
      // running server leaves exactly what was dumped.
      dump: ["pg_dumpall", "--clean", "--if-exists", "-U", role],
      load: ["psql", "-X", "-q", "-U", role, "-d", "postgres"],
      ping: [
        "sh",
        "-c",
        `${PID1_IS("postgres")}; exec psql -X -q -At -U "$0" -d postgres -c "select 1"`,
        role,
      ],
    }[task];
    return { cmd, user: "postgres", env: password ? [`PGPASSWORD=${password}`] : [] };
  }
  const password = env.get("MARIADB_ROOT_PASSWORD") ?? env.get("MYSQL_ROOT_PASSWORD");
  const program = {
    dump: 'exec "$(command -v mariadb-dump || command -v mysqldump)" -uroot --all-databases --single-transaction --routines --events',
    load: 'exec "$(command -v mariadb || command -v mysql)" -uroot',
    ping: `${PID1_IS("mariadbd|mysqld")}; exec "$(command -v mariadb || command -v mysql)" -uroot -e "select 1"`,
  }[task];
  return { cmd: ["sh", "-c", program], env: password ? [`MYSQL_PWD=${password}`] : [] };
}

interface ExecStreams {
  stdout: PassThrough;
  stderr: () => string;
  /** Ends the process's standard input (when it was attached). */
  stdin?: NodeJS.WritableStream;
  exitCode: () => Promise<number>;
  close: () => void;
}

/** Run the client in the container through the engine's exec API, its output as streams. */
async function execIn(
  docker: Docker,
  containerId: string,
  c: Client,
  withStdin: boolean,
): Promise<ExecStreams> {
  const container = docker.getContainer(containerId);
  const exec = await engineCall(docker, `run ${c.cmd[0]} in ${containerId}`, () =>
    container.exec({
      Cmd: c.cmd,
      Env: c.env,
      ...(c.user ? { User: c.user } : {}),
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: withStdin,
    }),
  );
  const stream = (await exec.start({ hijack: true, stdin: withStdin })) as NodeJS.ReadWriteStream & {
    destroy(): void;
  };
  const stdout = new PassThrough();
  let errText = "";
  const stderr = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (errText.length < 64 * 1024) errText += chunk.toString("utf8");
      done();
    },
  });
  docker.modem.demuxStream(stream, stdout, stderr);
  stream.on("end", () => stdout.end());
  stream.on("error", (error: Error) => stdout.destroy(error));
  return {
    stdout,
    stderr: () => errText.trim(),
    ...(withStdin ? { stdin: stream } : {}),
    exitCode: async () => (await exec.inspect()).ExitCode ?? -1,
    close: () => stream.destroy(),
  };
}

export interface DumpResult {
  snapshotId: string;
  /** Bytes the client printed. */
  bytes: number;
  /** Bytes restic added to the repository for it. */
  dataAdded: number;
}

/**
 * Every database dumped by the container's own client through the engine's exec API, as the
 * client prints it (never a temp file). The end is reached only when the client exited 0 having
 * printed something; otherwise the generator throws a DatabaseError naming why, after the bytes
 * it printed, so a consumer never takes a failed dump for a whole one.
 */
export async function* dumpOutput(
  docker: Docker,
  workload: Workload,
  engine: DatabaseEngine,
): AsyncGenerator<Buffer> {
  const dump = await execIn(docker, workload.id, await client(docker, workload.id, engine, "dump"), false);
  let bytes = 0;
  try {
    for await (const chunk of dump.stdout) {
      bytes += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    const status = await dump.exitCode();
    if (status !== 0 || bytes === 0) {
      const why = status !== 0 ? `exited ${status}` : "printed nothing";
      const detail = dump.stderr();
      throw new DatabaseError(`the ${engine} dump of ${workload.name} ${why}${detail ? `: ${detail}` : ""}`);
    }
  } finally {
    dump.close();
  }
}

/**
 * The dump streamed straight into `restic backup --stdin`. restic's standard input is ended only
 * once the dump is whole; otherwise restic is stopped before it can save a snapshot, so a failed
 * dump never becomes the latest backup.
 */
export async function dumpDatabase(
  docker: Docker,
  workload: Workload,
  engine: DatabaseEngine,
  file: string,
  restic: ResticContext,
  tags: readonly string[],
): Promise<DumpResult> {
  const stop = new AbortController();
  let finished!: () => void;
  const resticDone = new Promise<void>((resolve) => {
    finished = resolve;
  });
  let bytes = 0;
  const source = dumpOutput(docker, workload, engine);
  async function* output(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of source) {
        bytes += chunk.length;
        yield chunk;
      }
    } catch (error) {
      // Never end restic's input after a failure: stop restic, and wait until it is gone.
      stop.abort(error);
      await resticDone;
    }
  }
  const summary = new SummaryReader();
  const signal = restic.signal ? AbortSignal.any([restic.signal, stop.signal]) : stop.signal;
  try {
    await run(
      "restic",
      [
        "backup",
        "--stdin",
        "--stdin-filename",
        file,
        "--json",
        "--quiet",
        ...(restic.lockFlags ?? []),
        ...tags.flatMap((t) => ["--tag", t]),
      ],
      resticOptions({ ...restic, signal }, { input: output(), onStdout: summary.push }),
    );
  } finally {
    finished();
    // Closes the client's exec stream also when restic ended first (a signal).
    await source.return(undefined).catch(() => {});
  }
  const result = summary.end();
  return { snapshotId: result?.snapshotId ?? "", bytes, dataAdded: result?.dataAdded ?? 0 };
}

/** How long a server must keep answering before it is taken as up for good. */
const STEADY_MS = 5_000;

/**
 * Wait until the server in the container answers a query of its own client, and is the server
 * for good: the container's PID 1 is the server itself, or it has kept answering for 5 s. (Image
 * entrypoints start a temporary server for their first-start setup and stop it again; a client
 * that connected to that one would be cut off half-way.)
 */
export async function waitForDatabase(
  docker: Docker,
  containerId: string,
  engine: DatabaseEngine,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let answeringSince: number | undefined;
  for (;;) {
    const ping = await execIn(docker, containerId, await client(docker, containerId, engine, "ping"), false);
    let printed = "";
    ping.stdout.on("data", (chunk: Buffer) => {
      printed += chunk.toString("utf8");
    });
    await new Promise((resolve) => ping.stdout.on("end", resolve));
    if ((await ping.exitCode()) === 0) {
      answeringSince ??= Date.now();
      if (printed.includes("pid1-is-server") || Date.now() - answeringSince >= STEADY_MS) return;
    } else answeringSince = undefined;
    if (Date.now() > deadline)
      throw new DatabaseError(
        `the ${engine} server in ${containerId} did not answer within ${timeoutMs / 1000} s`,
      );
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * Feed a dump from the repository back through the container's own client (`restic dump` piped
 * into it, with backpressure: nothing held whole). Returns the client's error lines; a client that
 * exits non-zero (also one that stops reading half-way: restic is then stopped) is a DatabaseError.
 */
export async function loadDump(
  docker: Docker,
  containerId: string,
  engine: DatabaseEngine,
  snapshotId: string,
  file: string,
  restic: ResticContext,
): Promise<string> {
  const load = await execIn(docker, containerId, await client(docker, containerId, engine, "load"), true);
  const clientGone = new AbortController();
  const ended = new Promise<void>((resolve) =>
    load.stdout.on("end", () => {
      clientGone.abort(
        new DatabaseError(`the ${engine} client in ${containerId} ended before the whole dump was fed to it`),
      );
      resolve();
    }),
  );
  load.stdout.resume();
  const signal = restic.signal ? AbortSignal.any([restic.signal, clientGone.signal]) : clientGone.signal;
  try {
    let fed = true;
    await run(
      "restic",
      ["dump", "--no-lock", snapshotId, file],
      resticOptions({ ...restic, signal }, { stdoutTo: load.stdin }),
    ).catch((error: unknown) => {
      if (!clientGone.signal.aborted || restic.signal?.aborted) throw error;
      fed = false;
    });
    await ended;
    const status = await load.exitCode();
    if (status !== 0 || !fed)
      throw new DatabaseError(
        `loading the ${engine} dump into ${containerId} ${status !== 0 ? `exited ${status}` : "stopped half-way"}: ${load.stderr() || "no message"}`,
      );
    return load.stderr();
  } finally {
    load.close();
  }
}
