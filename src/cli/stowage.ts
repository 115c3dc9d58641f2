#!/usr/bin/env node
import { runMain } from "./main.js";
import { main } from "./stowage-cli.js";

await runMain("stowage", main);
