/**
 * Notification targets from labels (`backrest.notify`, `backrest.healthchecks`): Backrest sends
 * to them from a plan's hooks (shoutrrr and healthchecks), backup-once from its own run.
 */

/** shoutrrr's own query parameters of its generic service, not part of the endpoint's URL. */
const GENERIC_PARAMS = new Set([
  "template",
  "contenttype",
  "disabletls",
  "messagekey",
  "requestmethod",
  "title",
  "titlekey",
]);

/** Check one target; the error never shows credentials or query (tokens live there). */
export function checkNotifyUrl(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "is not a URL (a shoutrrr URL such as discord://token@id, or http(s)://...)";
  }
  if (!/^[a-z][a-z0-9+.-]*:$/.test(parsed.protocol)) return `${redactUrl(url)}: no scheme`;
  return undefined;
}

export function checkHealthchecksUrl(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    if (parsed.protocol === "http:" || parsed.protocol === "https:") return undefined;
  } catch {}
  return "is not an http(s) URL (e.g. https://hc-ping.com/<uuid>)";
}

/** The URL Backrest's shoutrrr hook sends to: a plain http(s) endpoint is shoutrrr's `generic+http(s)://`. */
export function shoutrrrUrl(url: string): string {
  return /^https?:\/\//i.test(url) ? `generic+${url}` : url;
}

/**
 * Where backup-once POSTs its JSON report for a target: a plain or generic http(s) endpoint (its
 * own query kept, shoutrrr's parameters dropped), or undefined for a service only shoutrrr speaks.
 */
export function httpEndpoint(url: string): string | undefined {
  const match = /^(?:generic\+)?(https?):\/\/(.*)$/i.exec(url) ?? /^generic():\/\/(.*)$/i.exec(url);
  if (!match) return undefined;
  const parsed = new URL(`${match[1] || "https"}://${match[2]}`);
  for (const key of [...parsed.searchParams.keys()])
    if (GENERIC_PARAMS.has(key.toLowerCase())) parsed.searchParams.delete(key);
  return parsed.toString();
}

/**
 * A URL for a log line or a message: scheme and host only. Credentials, query and path stay out
 * (a healthchecks UUID or a Slack webhook's token is the path).
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const more = parsed.pathname.replace(/^\/+/, "") || parsed.search ? "/…" : "";
    return `${parsed.protocol}//${parsed.host || "…"}${more}`;
  } catch {
    return "(not a URL)";
  }
}
