#!/usr/bin/env node
import { runMain } from "./main.js";
import { main } from "./statecraft-cli.js";

await runMain("statecraft", main);
