import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startTestServer } from "../helpers/server.js";
import { createKey } from "../../src/auth/keys.js";

/**
 * Every door locked, by construction: walk every route the server registered (the auth layer records
 * each one, and refuses to start with a route that declares no requirement) and call it without
 * credentials, with a wrong key, and with a key of too small a scope. Only the documented public routes
 * answer.
 */
const PUBLIC = new Set([
  "GET /health",
  "HEAD /health",
  "GET /openapi.json",
  "HEAD /openapi.json",
  "POST /v1/auth/session",
  "DELETE /v1/auth/session",
  "GET /sns/",
  "HEAD /sns/",
  "GET /sns/signing-key.pem",
  "HEAD /sns/signing-key.pem",
  "GET /sns/SimpleNotificationService-:file",
  "HEAD /sns/SimpleNotificationService-:file",
  // The dashboard's page (for a browser's page load only) and its static assets: no data in them.
  "GET /",
  "HEAD /",
  "GET /ui/assets/*",
  "HEAD /ui/assets/*",
  // The native catch-all only says "no such route".
  ...[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "PATCH",
    "OPTIONS",
    "SEARCH",
    "TRACE",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "MKCALENDAR",
    "ACL",
    "BIND",
    "CHECKOUT",
    "LINK",
    "MERGE",
    "M-SEARCH",
    "NOTIFY",
    "PURGE",
    "QUERY",
    "REBIND",
    "SOURCE",
    "SUBSCRIBE",
    "UNBIND",
    "UNLINK",
    "UNSUBSCRIBE",
    "CONNECT",
  ].map((m) => `${m} /v1/*`),
]);

let k: Awaited<ReturnType<typeof startTestServer>>;
let metricsKey: string;

before(async () => {
  k = await startTestServer({
    auth: {
      mode: "keys",
      credentials: [{ accessKeyId: "AKIDWALK", secretAccessKey: "walk-secret", scope: "admin" }],
    },
  });
  metricsKey = (await createKey(k.keys, { name: "scraper", scope: "metrics" })).token;
});
after(() => k.close());

/** A concrete path for a route pattern. */
const concrete = (url: string) =>
  url.replace(/:[A-Za-z]+/g, "x1").replace(/\*$/, "bucket-x/uploads/other/k.wav");

function routes(): { method: string; url: string; allow: string; sigv4: boolean }[] {
  const out: { method: string; url: string; allow: string; sigv4: boolean }[] = [];
  for (const r of k.app!.authRoutes)
    for (const m of [r.method].flat())
      out.push({
        method: m,
        url: r.url,
        allow: r.config!.auth!.allow,
        sigv4: r.config!.auth!.credentials === "sigv4",
      });
  return out;
}

test("every registered route declares a requirement, and the walk covers every family", () => {
  const all = routes();
  const urls = new Set(all.map((r) => r.url));
  for (const family of [
    "/v1/models",
    "/v1/endpoints/:name/invocations",
    "/v1/jobs",
    "/v1/jobs/:id/cancel",
    "/v1/invocations/:id/events",
    "/v1/audio/transcriptions",
    "/metrics",
    "/v1/endpoints/:name/variants/:variant/scaling",
    "/v1/endpoints/:name/webhook-secret",
    "/v1/keys",
    "/",
    "/endpoints/:name/async-invocations",
    "/*",
  ])
    assert.ok(urls.has(family), `route family ${family} is registered`);
  assert.ok(all.length > 60, `${all.length} routes`);
});

test("without credentials, every route but the public ones is refused (401/403)", async () => {
  const opened: string[] = [];
  let checked = 0;
  for (const r of routes()) {
    const id = `${r.method} ${r.url}`;
    if (r.method === "CONNECT" || r.method === "TRACE") continue; // not sendable through fetch
    const res = await fetch(k.url + concrete(r.url), {
      method: r.method,
      headers: r.method === "GET" || r.method === "HEAD" ? {} : { "content-type": "application/json" },
      body: r.method === "GET" || r.method === "HEAD" ? undefined : "{}",
    });
    await res.arrayBuffer();
    checked++;
    if (PUBLIC.has(id)) continue;
    if (res.status !== 401 && res.status !== 403) opened.push(`${id} → ${res.status}`);
  }
  assert.deepEqual(opened, [], "routes that answered without credentials");
  // `GET /` is public only as the dashboard's page load; for everyone else it is S3's ListBuckets.
  const root = await fetch(k.url + "/");
  assert.equal(root.status, 403);
  assert.match(await root.text(), /<Code>AccessDenied<\/Code>/);
  assert.ok(checked > 60);
});

test("a wrong key is refused on every key route; a metrics key only reads metrics", async () => {
  const bad = "kk_000000000000_" + "A".repeat(43);
  const tooSmall: string[] = [];
  for (const r of routes()) {
    if (r.allow === "public" || r.sigv4) continue;
    if (r.method === "CONNECT" || r.method === "TRACE") continue;
    const url = k.url + concrete(r.url);
    const wrong = await fetch(url, { method: r.method, headers: { authorization: `Bearer ${bad}` } });
    await wrong.arrayBuffer();
    assert.equal(wrong.status, 401, `${r.method} ${r.url} with an unknown key`);
    assert.equal(wrong.headers.get("www-authenticate"), 'Bearer realm="kikitori"');
    const scoped = await fetch(url, { method: r.method, headers: { authorization: `Bearer ${metricsKey}` } });
    await scoped.arrayBuffer();
    if (r.allow === "metrics" || r.allow === "any")
      assert.notEqual(scoped.status, 403, `${r.method} ${r.url}`);
    else if (scoped.status !== 403) tooSmall.push(`${r.method} ${r.url} → ${scoped.status}`);
  }
  assert.deepEqual(tooSmall, [], "routes a metrics-scope key could use");
});
