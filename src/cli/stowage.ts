#!/usr/bin/env -S node --max-semi-space-size=2
// See rest-server.ts: `stowage rest-server` needs the larger threadpool too.
process.env.UV_THREADPOOL_SIZE ??= "16";
const { runMain } = await import("./main.js");
const { main } = await import("./stowage-cli.js");

await runMain("stowage", main);
