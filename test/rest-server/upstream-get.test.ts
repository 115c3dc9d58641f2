import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseHead } from "../../src/rest-server/upstream-get.js";

// Heads in the shape radosgw (beast) sends them.
const RGW_206 = [
  "HTTP/1.1 206 Partial Content",
  "Content-Length: 10",
  "Content-Range: bytes 10-19/3000000",
  "Accept-Ranges: bytes",
  'ETag: "9b2cf535f27731c974343645a3985328"',
  "x-amz-request-id: tx000008d1ff3ba1f3e9a1d-006b101a32-371d-default",
  "Content-Type: application/octet-stream",
  "Date: Wed, 02 Dec 2026 13:52:00 GMT",
].join("\r\n");

describe("parseHead", () => {
  it("reads the status and the headers by lower-case name; HTTP/1.1 keeps the connection", () => {
    const head = parseHead(RGW_206);
    expect(head?.status).toBe(206);
    expect(head?.headers.get("content-range")).toBe("bytes 10-19/3000000");
    expect(head?.headers.get("content-length")).toBe("10");
    expect(head?.keepAlive).toBe(true);
  });

  it("Connection: close, HTTP/1.0 without keep-alive, repeated headers", () => {
    expect(parseHead("HTTP/1.1 200 OK\r\nConnection: close")?.keepAlive).toBe(false);
    expect(parseHead("HTTP/1.0 200 OK\r\nContent-Length: 1")?.keepAlive).toBe(false);
    expect(parseHead("HTTP/1.0 200 OK\r\nConnection: keep-alive")?.keepAlive).toBe(true);
    expect(parseHead("HTTP/1.1 200 OK\r\nVia: a\r\nVia: b")?.headers.get("via")).toBe("a, b");
    expect(parseHead("HTTP/1.1 404 Not Found")?.status).toBe(404);
  });

  it("anything but an HTTP/1.x head is refused, never thrown on", () => {
    for (const text of ["", "HTTP/2 200", "ICY 200 OK", "HTTP/1.1 20 OK", "HTTP/1.1 200 OK\r\nno colon"])
      expect(parseHead(text), JSON.stringify(text)).toBeUndefined();
    fc.assert(
      fc.property(fc.string(), (text) => {
        const head = parseHead(text);
        if (head) expect(head.status).toBeGreaterThanOrEqual(100);
      }),
    );
  });
});
