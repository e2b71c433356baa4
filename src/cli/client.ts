import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import pRetry, { AbortError } from "p-retry";

/** A small client of the native REST API, used by the CLI. */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    /** An API key, sent as `Authorization: Bearer`. */
    private readonly key?: string,
  ) {}

  /** Request headers, with the key when there is one. */
  headers(more: Record<string, string> = {}): Record<string, string> {
    return this.key ? { authorization: `Bearer ${this.key}`, ...more } : more;
  }

  async json<T>(method: string, path: string, body?: unknown, okStatuses = [200, 201, 202, 204]): Promise<T> {
    const res = await fetch(this.baseUrl + path, {
      method,
      headers: this.headers(body === undefined ? {} : { "content-type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!okStatuses.includes(res.status)) throw new ApiError(res.status, text, `${method} ${path}`);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** Uploads a file, streamed, reporting bytes sent. */
  async upload(file: string, bucket: string, key: string, onBytes: (sent: number, total: number) => void) {
    const { size } = await stat(file);
    let sent = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sent += chunk.length;
        onBytes(sent, size);
        cb(null, chunk);
      },
    });
    const body = Readable.toWeb(createReadStream(file).pipe(counter)) as ReadableStream;
    const path = `/v1/objects/${encodeURIComponent(bucket)}/${key.split("/").map(encodeURIComponent).join("/")}`;
    const res = await fetch(this.baseUrl + path, {
      method: "PUT",
      body,
      headers: this.headers({ "content-type": "application/octet-stream", "content-length": String(size) }),
      duplex: "half",
    } as RequestInit);
    const text = await res.text();
    if (res.status !== 201) throw new ApiError(res.status, text, `upload ${file}`);
    return JSON.parse(text) as { location: string; size: number };
  }

  /** The result document; with `format`, a json transcript rendered in that format by the server. */
  async result(id: string, format?: string): Promise<{ status: number; contentType: string; body: Buffer }> {
    const query = format ? `?format=${encodeURIComponent(format)}` : "";
    const res = await fetch(`${this.baseUrl}/v1/invocations/${encodeURIComponent(id)}/result${query}`, {
      headers: this.headers(),
    });
    return {
      status: res.status,
      contentType: res.headers.get("content-type") ?? "",
      body: Buffer.from(await res.arrayBuffer()),
    };
  }
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    let message = body;
    try {
      message = (JSON.parse(body) as { error?: { message?: string } }).error?.message ?? body;
    } catch {
      // keep the raw body
    }
    super(`${what}: ${status} ${message}`);
  }
}

/** The server went away before the answer was complete (it restarts, or the connection dropped). */
export class ServerGone extends Error {}

const causeCode = (e: unknown): string | undefined =>
  (e as { cause?: { code?: string } })?.cause?.code ?? (e as { code?: string })?.code;

/** Whether an error means "the server is not there right now", as opposed to an answer. */
export function isServerGone(e: unknown): boolean {
  if (e instanceof ServerGone) return true;
  if (e instanceof ApiError) return e.status >= 500;
  // undici: "fetch failed" (connect errors) and "terminated" (a body cut off), with the socket error as cause.
  return e instanceof TypeError || causeCode(e) !== undefined;
}

/**
 * Runs a step again, with exponential backoff and jitter (p-retry), while the server is gone; any other error
 * fails at once, and so does everything once `deadline` (the user's timeout) aborts. A step must be safe to
 * run twice: its first run may have done its work before the answer was lost.
 */
export function reconnecting(deadline: AbortSignal | undefined, onRetry: (why: string) => void) {
  return <T>(step: () => Promise<T>): Promise<T> =>
    pRetry(
      async () => {
        try {
          return await step();
        } catch (e) {
          throw !deadline?.aborted && isServerGone(e) ? e : new AbortError(e as Error);
        }
      },
      {
        retries: Infinity,
        minTimeout: 250,
        maxTimeout: 5000,
        randomize: true,
        ...(deadline ? { signal: deadline } : {}),
        onFailedAttempt: ({ error }) => onRetry(causeCode(error) ?? error.message),
      },
    );
}
