// A real Backrest (BACKREST_BIN, with BACKREST_RESTIC_BIN) for the benchmarks: started on a free
// loopback port in a directory of its own, auth off, in a process group of its own.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { freePort } from "./lib.mjs";

export const { BACKREST_BIN, BACKREST_RESTIC_BIN } = process.env;

/** Exit 2 with one line when the Backrest executables are not given. */
export function requireBackrest() {
  if (BACKREST_BIN && BACKREST_RESTIC_BIN) return;
  console.error("set BACKREST_BIN and BACKREST_RESTIC_BIN (Backrest v1.14.1, restic >= 0.19.1)");
  process.exit(2);
}

/** Start one in `dir` (made here); resolves once its API answers. */
export async function startBackrest(dir, instance = "bench") {
  mkdirSync(dir, { recursive: true });
  const config = path.join(dir, "config.json");
  writeFileSync(config, JSON.stringify({ version: 6, instance, auth: { disabled: true } }), { mode: 0o600 });
  const port = await freePort();
  const child = spawn(BACKREST_BIN, [], {
    cwd: dir,
    detached: true,
    stdio: "ignore",
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      BACKREST_PORT: `127.0.0.1:${port}`,
      BACKREST_CONFIG: config,
      BACKREST_DATA: path.join(dir, "data"),
      BACKREST_RESTIC_COMMAND: BACKREST_RESTIC_BIN,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const call = async (method, body = {}) => {
    const response = await fetch(`${url}/v1.Backrest/${method}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method}: ${response.status} ${text}`);
    return JSON.parse(text || "{}");
  };
  for (let i = 0; ; i++) {
    try {
      await call("GetConfig");
      break;
    } catch (error) {
      if (i > 900) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    url,
    call,
    stop: () => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    },
  };
}
