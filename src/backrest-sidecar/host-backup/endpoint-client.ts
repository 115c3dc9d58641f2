import http from "node:http";
import { StowageError } from "../../system/errors.js";
import { HOOK_HOST, RECOVER_PATH } from "../workloads/hook-routes.js";

/**
 * Ask the daemon serving `socket` to finish the snapshot plans it prepared whose backup is not
 * running. Undefined when no daemon answers there (then nothing is prepared: dead runs' journals
 * are what is left, and recover handles those itself).
 */
export function askDaemonToRecover(socket: string): Promise<string[] | undefined> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { socketPath: socket, method: "POST", path: RECOVER_PATH, headers: { Host: HOOK_HOST } },
      (response) => {
        let body = "";
        response.on("data", (chunk: Buffer) => {
          body += chunk;
        });
        response.on("end", () => {
          if (response.statusCode !== 200)
            return reject(
              new StowageError("EXEC_FAILED", `the sidecar at ${socket} could not recover: ${body.trim()}`),
            );
          resolve((JSON.parse(body) as { finished: string[] }).finished);
        });
      },
    );
    request.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT" || error.code === "ECONNREFUSED") resolve(undefined);
      else
        reject(
          new StowageError(
            "EXEC_FAILED",
            `cannot reach the sidecar at ${socket}: ${error.code ?? error.message}`,
          ),
        );
    });
    request.end();
  });
}
