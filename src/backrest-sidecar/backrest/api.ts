import { readFile } from "node:fs/promises";
import { ConfigError, StowageError } from "../../system/errors.js";
import type { Json } from "./store.js";

/** Another writer changed Backrest's config since we read it (its modno moved on). */
export class ConfigConflictError extends StowageError {
  constructor(message: string) {
    super("TEMPORARY", message);
  }
}

/**
 * Backrest did not answer, or failed on its side. `transient`: worth trying again later (it is
 * down, restarting or busy), as opposed to a refusal that another try would only repeat.
 */
export class BackrestUnavailableError extends StowageError {
  constructor(
    message: string,
    readonly transient: boolean,
  ) {
    super("UNAVAILABLE", message);
  }
}

export interface BackrestCredentials {
  user: string;
  /** Read at every call (a rotated password is picked up), never kept in a log or a message. */
  passwordFile: string;
}

/** One answer of a Connect endpoint: its HTTP status and the JSON body. */
interface Answer {
  status: number;
  body: Json;
}

const CALL_TIMEOUT_MS = 60_000;

/** The text of a fetch failure: undici's "fetch failed" hides the reason in its cause. */
function reason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if ((error as Error).name === "TimeoutError") return `no answer within ${CALL_TIMEOUT_MS / 1000} s`;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

/**
 * A client of Backrest's own API (Connect JSON: `POST <url>/v1.Backrest/<Method>`), with HTTP
 * Basic authentication as a Backrest user when credentials are given. A URL with credentials in
 * it is refused: they would be seen in `ps` and logs.
 */
export class BackrestApi {
  /** The base URL without a trailing slash: what messages name. */
  readonly where: string;

  constructor(
    url: string,
    private readonly credentials?: BackrestCredentials,
  ) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigError(`--backrest-url '${url}': not a URL (expected e.g. http://backrest:9898)`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
      throw new ConfigError(
        `--backrest-url ${parsed.protocol}//${parsed.host}: expected http:// or https://`,
      );
    if (parsed.username || parsed.password)
      throw new ConfigError(
        "--backrest-url must not carry credentials: give the user with --backrest-user and the password in --backrest-password-file",
      );
    if (parsed.search || parsed.hash)
      throw new ConfigError(
        `--backrest-url ${parsed.origin}${parsed.pathname}: no query or fragment, please`,
      );
    this.where = `${parsed.origin}${parsed.pathname.replace(/\/+$/, "")}`;
  }

  getConfig(): Promise<Json> {
    return this.call("GetConfig", {});
  }

  setConfig(config: Json): Promise<Json> {
    return this.call("SetConfig", config);
  }

  /** Call one method of the `v1.Backrest` service; a failure is a typed error naming the URL. */
  async call(method: string, request: Json): Promise<Json> {
    const answer = await this.post(method, request);
    if (answer.status >= 200 && answer.status < 300) return answer.body;
    throw this.failure(method, answer);
  }

  private async authorization(): Promise<Record<string, string>> {
    if (!this.credentials) return {};
    const { user, passwordFile } = this.credentials;
    let password: string;
    try {
      password = (await readFile(passwordFile, "utf8")).replace(/\r?\n$/, "");
    } catch (error) {
      throw new ConfigError(
        `cannot read --backrest-password-file ${passwordFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
    if (password === "") throw new ConfigError(`--backrest-password-file ${passwordFile} is empty`);
    return { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` };
  }

  private async post(method: string, request: Json): Promise<Answer> {
    const headers = {
      "Content-Type": "application/json",
      "Connect-Protocol-Version": "1",
      ...(await this.authorization()),
    };
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.where}/v1.Backrest/${method}`, {
        method: "POST",
        headers,
        body: JSON.stringify(request),
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
      text = await response.text();
    } catch (error) {
      throw new BackrestUnavailableError(`cannot reach Backrest at ${this.where}: ${reason(error)}`, true);
    }
    let body: Json = {};
    if (text.trim() !== "") {
      try {
        const parsed: unknown = JSON.parse(text);
        if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) body = parsed as Json;
      } catch {
        body = { message: text.slice(0, 200) };
      }
    }
    return { status: response.status, body };
  }

  /** Connect's error answer (`{"code": "...", "message": "..."}`) as the error it stands for. */
  private failure(method: string, answer: Answer): StowageError {
    const code = typeof answer.body.code === "string" ? answer.body.code : "";
    const message = typeof answer.body.message === "string" ? answer.body.message : "";
    const said = `HTTP ${answer.status}${code ? ` ${code}` : ""}${message ? `: ${message}` : ""}`;
    if (answer.status === 401 || code === "unauthenticated") {
      const who = this.credentials
        ? `refused the credentials of user '${this.credentials.user}'`
        : "wants credentials: give --backrest-user and --backrest-password-file";
      return new ConfigError(`Backrest at ${this.where} ${who} (${said})`);
    }
    if (answer.status === 403 || code === "permission_denied")
      return new ConfigError(`Backrest at ${this.where} does not let us ${method} (${said})`);
    if (code === "failed_precondition" && /modno/.test(message))
      return new ConfigConflictError(`Backrest's config at ${this.where} changed meanwhile (${said})`);
    if (answer.status === 404 || code === "unimplemented")
      return new BackrestUnavailableError(
        `no Backrest API at ${this.where} (${method}: ${said}); is it Backrest, and the right URL?`,
        false,
      );
    const transient = answer.status >= 500 || code === "unavailable" || code === "deadline_exceeded";
    return new BackrestUnavailableError(`Backrest at ${this.where} failed ${method} (${said})`, transient);
  }
}
