import { useEffect, useState } from "preact/hooks";

/** The page address after `#`: `/invocations?state=Queued` → path and query. */
export interface Route {
  path: string;
  query: URLSearchParams;
}

function current(): Route {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path = "/", query = ""] = hash.split("?");
  return { path, query: new URLSearchParams(query) };
}

/**
 * Hash routing: the dashboard is one document at `/`, so every page address works on reload and no
 * path of the server (where S3 owns `/<bucket>`) is taken.
 */
export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const onChange = () => setRoute(current());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

/** A page address with its query, dropping empty values. */
export function href(path: string, query: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
  const s = q.toString();
  return `#${path}${s ? `?${s}` : ""}`;
}
