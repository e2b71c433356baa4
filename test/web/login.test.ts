import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createKey } from "../../src/auth/keys.js";
import { testdata } from "../helpers/fixtures.js";
import { readSse } from "../../src/notify/index.js";
import { Api, noopModelServer, startTestServer, waitFor } from "../helpers/server.js";
import { launch, missing, screenshot } from "./browser.js";

test("the dashboard behind the auth layer: refused without a key, a login with one", async (t) => {
  const why = missing();
  if (why) throw new Error(why);
  const k = await startTestServer({ auth: { mode: "keys" } });
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await k.close();
  });
  await k.api.endpoint("fast", { image: `local:${noopModelServer}` });
  const input = await k.api.put("kikitori", "in/jfk.wav", readFileSync(testdata("jfk.wav")), "audio/wav");
  const adminRun = (await k.api.ok("POST", "/v1/endpoints/fast/invocations", { inputLocation: input }))
    .inferenceId;
  const admin = k.api.key!;
  const context = await browser.newContext();
  const page = await context.newPage();

  await t.test("without a key: the login form, and every API call the page makes is refused", async () => {
    const refused: string[] = [];
    page.on("response", (r) => {
      if (r.status() === 401) refused.push(new URL(r.url()).pathname);
    });
    await page.goto(`${k.url}/#/invocations`);
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    assert.equal(await page.getByRole("navigation", { name: "Pages" }).count(), 0);
    assert.ok(refused.includes("/v1/auth/whoami"), refused.join());
    for (const path of ["/v1/invocations", "/v1/endpoints/fast/events", "/v1/model-cache", "/v1/keys"]) {
      const res = await page.request.get(k.url + path);
      assert.equal(res.status(), 401, path);
    }
    const stream = await page.request.get(`${k.url}/v1/invocations`, {
      headers: { accept: "text/event-stream" },
    });
    assert.equal(stream.status(), 401, "the live list");
    await page.getByLabel("API key").fill("kk_not_a_key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").waitFor();
    assert.match((await page.getByRole("alert").textContent()) ?? "", /not valid/);
    await screenshot(page, "login");
  });

  await t.test("with an admin key: the session cookie (HttpOnly) opens every page", async () => {
    await page.getByLabel("API key").fill(admin);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator(`tr[data-id="${adminRun}"]`).waitFor();
    assert.equal(await page.evaluate("document.cookie"), "", "the session cookie is not readable by scripts");
    assert.ok((await context.cookies()).some((c) => c.name === "kikitori_session" && c.httpOnly));
    await page.goto(`${k.url}/#/endpoints/fast`);
    await page.getByTestId("count-inservice").filter({ hasText: /^1$/ }).waitFor();
  });

  let invokeKey = "";
  await t.test("keys: created (shown once) and revoked from the page", async () => {
    await page.goto(`${k.url}/#/models`);
    await page.getByLabel("Name").fill("laptop");
    await page.getByLabel("Scope").selectOption("invoke");
    await page.getByRole("button", { name: "Create key" }).click();
    const shown = page.getByTestId("new-key");
    await shown.waitFor();
    invokeKey = (await shown.locator(".token").textContent())!;
    assert.match(invokeKey, /^kk_/);
    const row = page.getByTestId("keys").locator("tr", { hasText: "laptop" });
    await row.waitFor();
    // A second key to revoke.
    const spare = await createKey(k.keys, { name: "spare", scope: "invoke" });
    await page.reload();
    const spareRow = page.getByTestId("keys").locator("tr", { hasText: "spare" });
    page.once("dialog", (d) => void d.accept());
    await spareRow.getByRole("button", { name: /Revoke/ }).click();
    await spareRow.getByText("revoked").waitFor();
    const res = await fetch(`${k.url}/v1/invocations`, {
      headers: { authorization: `Bearer ${spare.token}` },
    });
    assert.equal(res.status, 401, "a revoked key is refused");
    await screenshot(page, "keys");
  });

  await t.test("an invoke key sees only its own invocations", async () => {
    const other = await browser.newContext();
    const p = await other.newPage();
    await p.goto(`${k.url}/`);
    await p.getByLabel("API key").fill(invokeKey);
    await p.getByRole("button", { name: "Sign in" }).click();
    await p.getByRole("heading", { name: /Invocations/ }).waitFor();
    const nav = (await p.getByRole("navigation", { name: "Pages" }).textContent()) ?? "";
    assert.doesNotMatch(nav, /Endpoints|Models/);
    await p.getByText(/No invocations yet/).waitFor();
    assert.equal(await p.locator(`tr[data-id="${adminRun}"]`).count(), 0);
    // Live: an admin's new invocation never reaches this list (nor the key's own event stream); the
    // key's own does.
    const mine = new Api(k.url, invokeKey);
    const abort = new AbortController();
    const stream = await fetch(`${k.url}/v1/invocations`, {
      headers: mine.headers({ accept: "text/event-stream" }),
      signal: abort.signal,
    });
    assert.equal(stream.status, 200);
    const streamed: string[] = [];
    const reading = (async () => {
      for await (const e of readSse(stream.body!)) streamed.push(e.data);
    })().catch(() => {});
    const adminLater = (await k.api.ok("POST", "/v1/endpoints/fast/invocations", { inputLocation: input }))
      .inferenceId;
    const { uploadPrefix } = await mine.ok("GET", "/v1/auth/whoami");
    const own = await mine.put(
      "kikitori",
      `${uploadPrefix}jfk.wav`,
      readFileSync(testdata("jfk.wav")),
      "audio/wav",
    );
    const ownRun = (await mine.ok("POST", "/v1/endpoints/fast/invocations", { inputLocation: own }))
      .inferenceId;
    await p.locator(`tr[data-id="${ownRun}"]`).waitFor();
    await k.api.waitTerminal(adminLater);
    await p.locator(`tr[data-id="${ownRun}"][data-state="Succeeded"]`).waitFor();
    await waitFor(
      () => streamed.some((d) => d.includes(ownRun) && d.includes("Succeeded")),
      10_000,
      "own run",
    );
    abort.abort();
    await reading;
    assert.equal(await p.locator(`tr[data-id="${adminLater}"]`).count(), 0, "another key's invocation");
    assert.ok(!streamed.some((d) => d.includes(adminLater)), "another key's invocation was streamed");
    await other.close();
  });

  await t.test("sign out: back to the login form, and the session no longer works", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    assert.equal((await page.request.get(`${k.url}/v1/invocations`)).status(), 401);
  });
});
