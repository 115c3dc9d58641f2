import type { Json } from "./store.js";

/** Key-sorted JSON with plans, repos and path lists compared regardless of order (Backrest sorts them). */
export function canonical(value: unknown, key = ""): string {
  if (Array.isArray(value)) {
    const items = value.map((item) => canonical(item));
    if (["plans", "repos", "paths", "sources", "excludes", "exclude"].includes(key)) items.sort();
    return `[${items.join(",")}]`;
  }
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Json)
      .filter(([k]) => k !== "modno")
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v, k)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
