import path from "node:path";
import { run } from "../../src/system/exec.js";
import { ensureBaseImage } from "./debian.js";
import { TEST_LABEL } from "./docker.js";

const IMAGES = path.join(import.meta.dirname, "images");

/**
 * A database image built here from Debian's own packages (`apt-get install postgresql-15` /
 * `mariadb-server` on the debootstrap base: no registry is reached). Built once per engine; the
 * engine's cache keeps it for later runs.
 */
export async function ensureDatabaseImage(engine: "postgres" | "mariadb"): Promise<string> {
  const tag = `stowage-test/${engine}:bookworm`;
  const present = await run("docker", ["image", "inspect", tag], { okStatuses: [0, 1] });
  if (present.status === 0) return tag;
  await ensureBaseImage();
  await run("docker", ["build", "-q", "--label", `${TEST_LABEL}=1`, "-t", tag, path.join(IMAGES, engine)], {
    timeoutMs: 900_000,
    env: { ...process.env, DOCKER_BUILDKIT: "0" },
  });
  return tag;
}
