// Entry of the self-contained executable (one CommonJS bundle): a multi-call binary. Invoked as
// `statecraft`, `rest-server`, ... through a symlink it is that command; otherwise it is `stowage`.
// rest-server fsyncs uploads in libuv's thread pool: size it before anything can start the pool.
process.env.UV_THREADPOOL_SIZE ??= "16";

import path from "node:path";
import { runMain } from "./main.js";
import { main as stowage } from "./stowage-cli.js";
import { toolForInvocation } from "./tools.js";

const invokedAs = path.basename(process.argv[1] ?? "stowage");
const tool = toolForInvocation(invokedAs, process.env);
if (tool) {
  void tool.load().then((main) => runMain(tool.name, main));
} else {
  void runMain("stowage", stowage);
}
