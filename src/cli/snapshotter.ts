#!/usr/bin/env node
import { runMain } from "./main.js";
import { main } from "./snapshotter-cli.js";

await runMain("snapshotter", main);
