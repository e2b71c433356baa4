import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable, Transform } from "node:stream";

/** A small client of the native REST API, used by the CLI. */
export class ApiClient {
  constructor(readonly baseUrl: string) {}

  async json<T>(method: string, path: string, body?: unknown, okStatuses = [200, 201, 202, 204]): Promise<T> {
    const res = await fetch(this.baseUrl + path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
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
      headers: { "content-type": "application/octet-stream", "content-length": String(size) },
      duplex: "half",
    } as RequestInit);
    const text = await res.text();
    if (res.status !== 201) throw new ApiError(res.status, text, `upload ${file}`);
    return JSON.parse(text) as { location: string; size: number };
  }

  async result(id: string): Promise<{ status: number; contentType: string; body: Buffer }> {
    const res = await fetch(`${this.baseUrl}/v1/invocations/${encodeURIComponent(id)}/result`);
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
