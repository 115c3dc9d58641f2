#!/usr/bin/env -S node --max-semi-space-size=2
import { runMain } from "./main.js";
import { main } from "./snapshotter-cli.js";

await runMain("snapshotter", main);
