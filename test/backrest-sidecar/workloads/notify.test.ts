import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checkHealthchecksUrl,
  checkNotifyUrl,
  httpEndpoint,
  redactUrl,
  shoutrrrUrl,
} from "../../../src/backrest-sidecar/workloads/notify.js";

describe("notification targets", () => {
  it("a plain http(s) endpoint is shoutrrr's generic service for Backrest; shoutrrr URLs stay as they are", () => {
    expect(shoutrrrUrl("https://hooks.example/x?y=1")).toBe("generic+https://hooks.example/x?y=1");
    expect(shoutrrrUrl("http://u:p@h:8080/x")).toBe("generic+http://u:p@h:8080/x");
    expect(shoutrrrUrl("discord://token@id")).toBe("discord://token@id");
    expect(shoutrrrUrl("generic+https://h/x")).toBe("generic+https://h/x");
  });

  it("backup-once posts to the http(s) endpoint of a plain or generic URL, without shoutrrr's own parameters", () => {
    expect(httpEndpoint("https://h/x?token=t")).toBe("https://h/x?token=t");
    expect(httpEndpoint("generic+http://u:p@h:81/x?template=json&a=b")).toBe("http://u:p@h:81/x?a=b");
    expect(httpEndpoint("generic://h/x?disabletls=yes")).toBe("https://h/x");
    expect(httpEndpoint("telegram://token@telegram?chats=1")).toBeUndefined();
  });

  it("what a log line shows of a URL: scheme and host, never credentials, path or query", () => {
    expect(redactUrl("https://user:pw@hooks.example/services/T0/B0/XXXX?token=t")).toBe(
      "https://hooks.example/…",
    );
    expect(redactUrl("discord://token@12345")).toBe("discord://12345");
    expect(redactUrl("https://hc-ping.com/3f1c")).toBe("https://hc-ping.com/…");
    expect(redactUrl("https://h")).toBe("https://h");
    expect(redactUrl("nonsense")).toBe("(not a URL)");
    fc.assert(
      fc.property(
        fc.webUrl({ withQueryParameters: true, withFragments: true }),
        fc.string({ minLength: 6 }),
        (url, secret) => {
          const parsed = new URL(url);
          parsed.password = encodeURIComponent(secret);
          parsed.searchParams.set("token", secret);
          const shown = redactUrl(parsed.toString());
          expect(shown).not.toContain(encodeURIComponent(secret));
        },
      ),
    );
  });

  it("checks say what is wrong without quoting credentials", () => {
    expect(checkNotifyUrl("ntfy://ntfy.sh/topic")).toBeUndefined();
    expect(checkNotifyUrl("not a url")).toMatch(/is not a URL/);
    expect(checkHealthchecksUrl("https://hc-ping.com/x")).toBeUndefined();
    expect(checkHealthchecksUrl("ftp://u:secret@h/x")).not.toContain("secret");
  });
});
