import { UsageError } from "../system/errors.js";
import { commonOptions, type Flags, planIdPrefix, planOptionsOf } from "./backrest-sidecar-flags.js";

/** Flags that name one engine or one Backrest: the targets file names them per host instead. */
const SINGLE_HOST_FLAGS: Array<[keyof Flags, string]> = [
  ["backrestUrl", "--backrest-url"],
  ["config", "--config"],
  ["backrestUser", "--backrest-user"],
  ["backrestPasswordFile", "--backrest-password-file"],
  ["dockerSock", "--docker-sock"],
  ["apply", "--apply"],
  ["reloadCmd", "--reload-cmd"],
  ["socket", "--socket"],
];

/**
 * `--targets FILE`: every host with its engine client, its Backrest (the API; a fleet has no file
 * mode) and its plan options: its own docker root / volume prefix, defaults and repo defaults over
 * the flags', and its plan-id prefix (see hostPrefixes). A host's secrets are read from its files
 * now: one that cannot be read is one error before anything.
 */
export async function fleetHosts(flags: Flags & { targets: string }) {
  for (const [key, flag] of SINGLE_HOST_FLAGS)
    if (flags[key] !== undefined)
      throw new UsageError(
        `${flag} names one host; with --targets, each host's entry in ${flags.targets} does`,
      );
  const { loadTargets, hostPrefixes } = await import("../backrest-sidecar/fleet/targets.js");
  const { engineClient } = await import("../backrest-sidecar/fleet/engine.js");
  const { BackrestApi } = await import("../backrest-sidecar/backrest/api.js");
  const { ApiConfigStore } = await import("../backrest-sidecar/backrest/api-store.js");
  const targets = await loadTargets(flags.targets);
  const prefixes = hostPrefixes(targets, planIdPrefix(flags));
  const hosts = [];
  for (const target of targets) {
    const own: Flags = {
      ...flags,
      dockerRoot: target.dockerRoot ?? flags.dockerRoot,
      volumePrefix: target.volumePrefix ?? (target.dockerRoot ? undefined : flags.volumePrefix),
      defaultRepo: target.defaults?.repo ?? flags.defaultRepo,
      defaultSchedule: target.defaults?.schedule ?? flags.defaultSchedule,
      defaultRetention: target.defaults?.retention ?? flags.defaultRetention,
      repoDefaults: target.repoDefaults ?? flags.repoDefaults,
      planIdPrefix: prefixes.get(target.name),
      socket: target.socket,
    };
    const { user, passwordFile } = target.backrest;
    const credentials = user !== undefined && passwordFile !== undefined ? { user, passwordFile } : undefined;
    hosts.push({
      name: target.name,
      address: target.docker,
      docker: await engineClient(target),
      options: {
        store: new ApiConfigStore(new BackrestApi(target.backrest.url, credentials)),
        plan: await planOptionsOf(own),
        ...commonOptions(own),
      },
    });
  }
  return hosts;
}
