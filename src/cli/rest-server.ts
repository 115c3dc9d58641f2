#!/usr/bin/env node
import { runMain } from "./main.js";
import { main } from "./rest-server-cli.js";

await runMain("rest-server", main);
