#!/usr/bin/env -S node --max-semi-space-size=2
import { main } from "./backrest-sidecar-cli.js";
import { runMain } from "./main.js";

await runMain("backrest-sidecar", main);
