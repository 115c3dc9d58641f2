import { createServer } from "node:http";
import { freePort, type TestScope } from "./scope.js";

export interface SinkRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: string;
}

/** A local HTTP endpoint that answers 200 to everything and keeps each request, for notifications. */
export async function httpSink(scope: TestScope): Promise<{ base: string; requests: SinkRequest[] }> {
  const requests: SinkRequest[] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => {
      body += chunk;
    });
    request.on("end", () => {
      requests.push({
        method: request.method ?? "",
        path: request.url ?? "",
        authorization: request.headers.authorization,
        body,
      });
      response.end("ok");
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  scope.defer("close the HTTP sink", () => new Promise((resolve) => server.close(resolve)));
  return { base: `http://127.0.0.1:${port}`, requests };
}
