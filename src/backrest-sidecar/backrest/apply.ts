import type Docker from "dockerode";
import { engineCall } from "../../system/docker.js";
import { run } from "../../system/exec.js";
import type { Logger } from "../../system/log.js";

/**
 * How a written config file takes effect (file mode only: Backrest reads its file when it starts):
 * `docker restart` of its container (seed 004's `--apply`), or `--reload-cmd` under `sh -c`.
 * Restarting ends whatever Backrest is doing; the API mode needs neither.
 */
export function applyAfterWrite(
  docker: Docker,
  how: { container: string; reloadCmd: string | undefined },
  log: Logger,
): () => Promise<void> {
  return async () => {
    if (how.reloadCmd) {
      await run("sh", ["-c", how.reloadCmd]);
      log.info({ action: "apply.reload", command: how.reloadCmd }, "reload command ran");
      return;
    }
    await engineCall(docker, `restart container ${how.container}`, () =>
      docker.getContainer(how.container).restart(),
    );
    log.info({ action: "apply.restart", container: how.container }, "Backrest restarted");
  };
}
