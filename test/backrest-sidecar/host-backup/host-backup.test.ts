import { describe, expect, it } from "vitest";
import { stopWindows } from "../../../src/backrest-sidecar/host-backup/backup-once.js";
import { loadErrors } from "../../../src/backrest-sidecar/host-backup/restore.js";
import type { Workload } from "../../../src/backrest-sidecar/workloads/discover.js";
import { stopOrder } from "../../../src/backrest-sidecar/workloads/order.js";
import type { PlannedWorkload } from "../../../src/backrest-sidecar/workloads/volumes.js";

function workload(name: string, labels: Record<string, string> = {}, volumes: string[] = []): Workload {
  return {
    id: name,
    name,
    running: true,
    labels: { "com.docker.compose.project": "p", "com.docker.compose.service": name, ...labels },
    mounts: volumes.map((v) => ({
      type: "volume",
      name: v,
      source: `/var/lib/docker/volumes/${v}/_data`,
      destination: `/${v}`,
      readWrite: true,
    })),
  } as Workload;
}

const planned = (w: Workload, snapshot: boolean): PlannedWorkload => ({ workload: w, sources: [], snapshot });
const names = (list: readonly Workload[]) => list.map((w) => w.name);

describe("stopOrder (Compose's com.docker.compose.depends_on)", () => {
  it("stops dependants before what they depend on, across chains", () => {
    const db = workload("db");
    const app = workload("app", {
      "com.docker.compose.depends_on": "db:service_healthy:true,cache:service_started:false",
    });
    const cache = workload("cache");
    const web = workload("web", { "com.docker.compose.depends_on": "app:service_started:false" });
    expect(names(stopOrder([db, cache, app, web]))).toEqual(["web", "app", "db", "cache"]);
  });

  it("keeps the given order without dependency labels, and does not loop on a cycle", () => {
    const a = workload("a", { "com.docker.compose.depends_on": "b:service_started:false" });
    const b = workload("b", { "com.docker.compose.depends_on": "a:service_started:false" });
    const c = workload("c");
    expect(names(stopOrder([c, a, b])).sort()).toEqual(["a", "b", "c"]);
    expect(names(stopOrder([workload("x"), workload("y")]))).toEqual(["x", "y"]);
  });

  it("matches dependencies within the same compose project only", () => {
    const otherDb = workload("db", { "com.docker.compose.project": "other" });
    const app = workload("app", { "com.docker.compose.depends_on": "db:service_started:false" });
    expect(names(stopOrder([otherDb, app]))).toEqual(["db", "app"]);
  });
});

describe("stopWindows", () => {
  it("stops a snapshot workload only for the snapshots, a live one for its backup", () => {
    const snap = workload("snap", {}, ["s"]);
    const live = workload("live", {}, ["l"]);
    const windows = stopWindows([snap, live], [planned(snap, true)], [planned(live, false)]);
    expect(names(windows.snapshotWindow)).toEqual(["snap"]);
    expect(names(windows.liveWindow)).toEqual(["live"]);
  });

  it("stops a quiesced container that is not backed up for the snapshots, and for a live backup only if it shares its data", () => {
    const snap = workload("snap", {}, ["s"]);
    const live = workload("live", {}, ["shared"]);
    const front = workload("front");
    const writer = workload("writer", {}, ["shared"]);
    const windows = stopWindows([snap, live, front, writer], [planned(snap, true)], [planned(live, false)]);
    expect(names(windows.snapshotWindow)).toEqual(["snap", "front", "writer"]);
    expect(names(windows.liveWindow)).toEqual(["live", "writer"]);
  });

  it("with no snapshots, every quiesced container stops for the live backup (as before)", () => {
    const live = workload("live", {}, ["l"]);
    const front = workload("front");
    const windows = stopWindows([live, front], [], [planned(live, false)]);
    expect(windows.snapshotWindow).toEqual([]);
    expect(names(windows.liveWindow)).toEqual(["live", "front"]);
  });
});

describe("loadErrors", () => {
  it("keeps psql's real errors and drops the ones a pg_dumpall --clean load always prints", () => {
    const stderr = [
      "ERROR:  current user cannot be dropped",
      'ERROR:  role "postgres" already exists',
      'ERROR:  relation "orders" does not exist',
      'NOTICE:  database "x" does not exist, skipping',
    ].join("\n");
    expect(loadErrors(stderr)).toEqual(['ERROR:  relation "orders" does not exist']);
  });
});
