#!/usr/bin/env node
import { runMain } from "./main.js";
import { main } from "./wafers-cli.js";

await runMain("wafers", main);
