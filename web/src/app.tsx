import { useCallback, useEffect, useState } from "preact/hooks";
import { api, ApiError, UNAUTHORIZED } from "./api.js";
import { useRoute } from "./router.js";
import type { Principal } from "./types.js";
import { Login } from "./pages/login.js";
import { Endpoints } from "./pages/endpoints.js";
import { Invocations } from "./pages/invocations.js";
import { InvocationPage } from "./pages/invocation.js";
import { Transcribe } from "./pages/transcribe.js";
import { Models } from "./pages/models.js";

const PAGES = [
  { path: "/", title: "Endpoints" },
  { path: "/invocations", title: "Invocations" },
  { path: "/transcribe", title: "Transcribe" },
  { path: "/models", title: "Models & keys" },
];

/** Who is signed in: the auth layer's answer, or (without one) open mode, where everything is allowed. */
async function whoami(): Promise<Principal> {
  try {
    return await api<Principal>("GET", "/v1/auth/whoami");
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return { scope: "admin", mode: "open" };
    throw e;
  }
}

export function App() {
  const route = useRoute();
  const [me, setMe] = useState<Principal | null | undefined>(undefined);
  const refresh = useCallback(() => {
    whoami().then(setMe, () => setMe(null));
  }, []);
  useEffect(() => {
    refresh();
    const onUnauthorized = () => setMe(null);
    window.addEventListener(UNAUTHORIZED, onUnauthorized);
    return () => window.removeEventListener(UNAUTHORIZED, onUnauthorized);
  }, [refresh]);

  const logout = async () => {
    await api("DELETE", "/v1/auth/session").catch(() => {});
    setMe(null);
  };

  const segment = "/" + (route.path.split("/")[1] ?? "");
  // A key that may only invoke sees its own invocations and sends files; the rest is for managers.
  const endpointsAllowed = me?.scope !== "invoke";
  const pages = PAGES.filter(
    (p) => endpointsAllowed || p.path === "/invocations" || p.path === "/transcribe",
  );
  const active =
    segment === "/endpoints" ? "/" : segment === "/" && !endpointsAllowed ? "/invocations" : segment;
  let page;
  if (me === undefined) page = <p class="muted">Loading…</p>;
  else if (me === null) page = <Login onLogin={refresh} />;
  else if (route.path.startsWith("/invocations/"))
    page = <InvocationPage id={decodeURIComponent(route.path.slice("/invocations/".length))} />;
  else if (segment === "/transcribe") page = <Transcribe me={me} />;
  else if (segment === "/models" && endpointsAllowed) page = <Models me={me} />;
  else if (segment === "/invocations" || !endpointsAllowed) page = <Invocations query={route.query} />;
  else
    page = (
      <Endpoints
        selected={route.path.startsWith("/endpoints/") ? decodeURIComponent(route.path.slice(11)) : undefined}
      />
    );

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="#/">
          kikitori
        </a>
        {me && (
          <nav aria-label="Pages">
            {pages.map((p) => (
              <a href={`#${p.path}`} aria-current={active === p.path ? "page" : undefined}>
                {p.title}
              </a>
            ))}
          </nav>
        )}
        {me && (
          <div class="who">
            <span class="muted">
              {me.mode === "open" ? "open mode" : `${me.name ?? "key"} · ${me.scope}`}
            </span>
            {me.mode !== "open" && (
              <button type="button" class="link" onClick={logout}>
                Sign out
              </button>
            )}
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}
