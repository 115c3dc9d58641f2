import { existsSync } from "node:fs";
import { requireHost } from "./host.js";

/** Integration tests run as root on a prepared host; say so once, up front, instead of failing each test. */
export default function setup(): void {
  requireHost({
    root: true,
    commands: [
      "mount",
      "losetup",
      "mkfs.btrfs",
      "btrfs",
      "restic",
      "docker",
      "tar",
      "lvs",
      "htpasswd",
      "script",
      "python3",
      "getfattr",
      "setfattr",
      "setfacl",
    ],
  });
  if (!existsSync("/var/run/docker.sock")) {
    throw new Error("no Docker engine: /var/run/docker.sock is absent; run 'npm run setup-host' as root");
  }
}
