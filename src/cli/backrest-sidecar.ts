#!/usr/bin/env node
import { main } from "./backrest-sidecar-cli.js";
import { runMain } from "./main.js";

await runMain("backrest-sidecar", main);
