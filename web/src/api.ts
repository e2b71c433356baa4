import { useEffect, useRef } from "preact/hooks";

/** An error answer of the native API: `{ error: { code, message } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Raised on any 401, so the shell shows the login form. */
export const UNAUTHORIZED = "kikitori:unauthorized";

async function check(res: Response): Promise<Response> {
  if (res.ok) return res;
  if (res.status === 401) window.dispatchEvent(new Event(UNAUTHORIZED));
  const text = await res.text();
  let code = `HTTP ${res.status}`;
  let message = text || res.statusText;
  try {
    const e = JSON.parse(text).error;
    if (e?.message) ({ code, message } = e);
  } catch {
    // not JSON: keep the text
  }
  throw new ApiError(res.status, code, message);
}

/** Calls the native API with the session cookie; JSON in, JSON out (undefined for 204). */
export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await check(
    await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return res.status === 204 ? (undefined as T) : ((await res.json()) as T);
}

/** The raw answer (a transcript, a failure document), whatever its status. */
export async function fetchText(path: string): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(path, { credentials: "same-origin" });
  if (res.status === 401) window.dispatchEvent(new Event(UNAUTHORIZED));
  return { status: res.status, type: res.headers.get("content-type") ?? "", text: await res.text() };
}

/** `s3://bucket/key` → the native API path that serves the object. */
export const objectPath = (location: string) =>
  "/v1/objects/" +
  location
    .replace(/^s3:\/\//, "")
    .split("/")
    .map(encodeURIComponent)
    .join("/");

/**
 * Follows a server-sent event stream while the component is mounted (or until `url` changes); each
 * named event's JSON data goes to its handler. EventSource reconnects by itself after a network error.
 */
export function useEventStream(
  url: string | undefined,
  // Each handler takes the JSON its event carries (typed by the caller).
  handlers: Record<string, (data: never) => void>,
  onOpenChange?: (open: boolean) => void,
): void {
  const current = useRef(handlers);
  current.current = handlers;
  const openChange = useRef(onOpenChange);
  openChange.current = onOpenChange;
  useEffect(() => {
    if (!url) return;
    const source = new EventSource(url, { withCredentials: true });
    const names = Object.keys(current.current);
    const listeners = names.map((name) => {
      const fn = (e: MessageEvent) =>
        (current.current[name] as ((data: unknown) => void) | undefined)?.(JSON.parse(e.data));
      source.addEventListener(name, fn as EventListener);
      return [name, fn] as const;
    });
    source.onopen = () => openChange.current?.(true);
    source.onerror = () => {
      openChange.current?.(false);
      // A refused stream (401, 404) closes for good; ask who we are so the login form can show.
      if (source.readyState === EventSource.CLOSED)
        void fetch("/v1/auth/whoami")
          .then(check)
          .catch(() => {});
    };
    return () => {
      for (const [name, fn] of listeners) source.removeEventListener(name, fn as EventListener);
      source.close();
    };
  }, [url]);
}
