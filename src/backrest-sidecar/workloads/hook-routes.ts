/**
 * The sidecar's endpoint for the plans Backrest runs (a Unix socket): the paths its hooks call,
 * and how the endpoint reads them back. One place, for the hooks written into plans and the
 * server that answers them.
 */
export type HookAction = "prepare" | "finish" | "dump";

const ACTIONS: readonly HookAction[] = ["prepare", "finish", "dump"];

/** The host part of the URL curl sends over the socket (only a name: the socket is the address). */
export const HOOK_HOST = "backrest-sidecar";

export function hookPath(planId: string, action: HookAction): string {
  return `/v1/plans/${encodeURIComponent(planId)}/${action}`;
}

export function parseHookPath(url: string): { planId: string; action: HookAction } | undefined {
  const match = /^\/v1\/plans\/([^/?#]+)\/([a-z]+)$/.exec(url);
  if (!match) return undefined;
  const action = match[2] as HookAction;
  if (!ACTIONS.includes(action)) return undefined;
  try {
    return { planId: decodeURIComponent(match[1] as string), action };
  } catch {
    return undefined;
  }
}

/** Finish every prepared plan whose Backrest backup is not known to be running (`recover`). */
export const RECOVER_PATH = "/v1/recover";
