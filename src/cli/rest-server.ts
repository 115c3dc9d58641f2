#!/usr/bin/env -S node --max-semi-space-size=2
// Uploads fsync in libuv's threadpool (4 threads by default); a slow fsync must not stall the file
// reads and writes of other connections. Set before anything can start the pool.
process.env.UV_THREADPOOL_SIZE ??= "16";
const { runMain } = await import("./main.js");
const { main } = await import("./rest-server-cli.js");

await runMain("rest-server", main);
