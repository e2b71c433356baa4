import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { normalize, testdata } from "../helpers/fixtures.js";
import { noopModelServer, startTestServer, waitFor } from "../helpers/server.js";
import { launch, missing, screenshot as shoot } from "./browser.js";

const shots: string[] = [];
const screenshot = async (page: Page, name: string) => shots.push(await shoot(page, name));

/** Generous: the instance loads Whisper on a shared 2-core machine. */
const SLOW = 400_000;

/** Every request of the page, to check that none leaves this server. */
function recordRequests(page: Page): string[] {
  const urls: string[] = [];
  page.on("request", (r) => urls.push(r.url()));
  return urls;
}

// Scripts run in the page are strings: this file is compiled for Node (no DOM types), and the test
// runner's transpiler would wrap functions in helpers the page does not have.

/** Records each new value of the expression `read` in the page, checked on every DOM change. */
async function watch(page: Page, name: string, read: string): Promise<void> {
  await page.evaluate(`(() => {
    const seen = (window[${JSON.stringify(name)}] = []);
    const check = () => {
      const v = ${read};
      if (v !== undefined && v !== null && seen.at(-1) !== v) seen.push(v);
    };
    new MutationObserver(check).observe(document.body, {
      subtree: true, childList: true, attributes: true, characterData: true,
    });
    check();
  })()`);
}
const seen = (page: Page, name: string): Promise<string[]> =>
  page.evaluate(`window[${JSON.stringify(name)}]`);
const playerTime = (page: Page): Promise<number> =>
  page.evaluate(`document.querySelector("audio").currentTime`);

/** Drops files on the drop zone as a person dragging them from a file manager does. */
async function dropFiles(page: Page, files: { name: string; type: string; path: string }[]) {
  const list = files.map((f) => ({
    name: f.name,
    type: f.type,
    b64: readFileSync(f.path).toString("base64"),
  }));
  const dataTransfer = await page.evaluateHandle(`(() => {
    const dt = new DataTransfer();
    for (const f of ${JSON.stringify(list)}) {
      const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([bytes], f.name, { type: f.type }));
    }
    return dt;
  })()`);
  await page.dispatchEvent('[data-testid="dropzone"]', "dragover", { dataTransfer });
  await page.dispatchEvent('[data-testid="dropzone"]', "drop", { dataTransfer });
}

test("the dashboard in a real browser (Debian's Chromium)", { timeout: 900_000 }, async (t) => {
  const why = missing();
  if (why) throw new Error(why);
  // Behind the auth layer, as a deployment with keys runs: the page signs in with an admin key.
  // English clips: the fast English model rather than the multilingual default.
  const k = await startTestServer({ defaultModel: "tiny.en", auth: { mode: "keys" } });
  const browser: Browser = await launch();
  t.after(async () => {
    await browser.close();
    await k.close();
  });
  await k.api.endpoint("whisper", { image: "kikitori/whisper" }, { initialInstanceCount: 0 });
  await k.api.scaleFromZero("whisper", 2);
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const requests: string[] = [];
  context.on("request", (r) => requests.push(r.url()));

  await t.test("sign in with a key", async () => {
    const page = await context.newPage();
    await page.goto(`${k.url}/`);
    await page.getByLabel("API key").fill(k.api.key!);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: /whisper/ }).waitFor();
    await page.close();
  });

  await t.test("first load under 300 kB compressed, nothing fetched from elsewhere", async () => {
    // A new browser context: an empty cache, with the session of the one that signed in.
    const fresh = await browser.newContext();
    await fresh.addCookies(await context.cookies());
    const page = await fresh.newPage();
    let total = 0;
    const sizes: string[] = [];
    page.on("requestfinished", async (r) => {
      const res = await r.response();
      if (/text\/event-stream/.test(res?.headers()["content-type"] ?? "")) return; // live data, not page weight
      const s = await r.sizes();
      total += s.responseBodySize + s.responseHeadersSize;
      sizes.push(`${new URL(r.url()).pathname} ${s.responseBodySize}`);
    });
    const urls = recordRequests(page);
    await page.goto(`${k.url}/`, { waitUntil: "networkidle" });
    await page.getByRole("heading", { name: /whisper/ }).waitFor();
    console.log(`first load: ${total} bytes on the wire (${sizes.join(", ")})`);
    assert.ok(total > 10_000, "the page's scripts were counted");
    assert.ok(total < 300_000, `first load ${total} bytes`);
    assert.ok(
      urls.every((u) => u.startsWith(k.url)),
      urls.join("\n"),
    );
    await fresh.close();
  });

  let endpointPage: Page;
  await t.test("the endpoint page shows no instance at first", async () => {
    endpointPage = await context.newPage();
    await endpointPage.goto(`${k.url}/#/endpoints/whisper`);
    await endpointPage.getByTestId("count-inservice").waitFor();
    assert.equal(await endpointPage.getByTestId("count-inservice").textContent(), "0");
    await watch(
      endpointPage,
      "inService",
      `document.querySelector('[data-testid="count-inservice"]')?.textContent`,
    );
    await watch(
      endpointPage,
      "pending",
      `document.querySelector('[data-testid="count-pending"]')?.textContent`,
    );
  });

  const page = await context.newPage();
  let inferenceId = "";
  await t.test("drop two real speech clips; the first goes Queued → Running → Succeeded live", async () => {
    await page.goto(`${k.url}/#/transcribe`);
    await page.getByLabel("Model (endpoint)").selectOption("whisper");
    await page.getByLabel("Language").selectOption("en");
    await page.getByTestId("dropzone").waitFor();
    await watch(page, "states", `document.querySelector('tr[data-file="jfk.wav"]')?.dataset.state`);
    await dropFiles(page, [
      { name: "jfk.wav", type: "audio/wav", path: testdata("jfk.wav") },
      { name: "ljspeech.wav", type: "audio/wav", path: testdata("ljspeech_LJ050-0131.wav") },
    ]);
    // Once those two are invoked, one more with word timings, while the instance is still up.
    await page
      .locator('tr[data-file="ljspeech.wav"]:not([data-state="Uploading"])')
      .waitFor({ timeout: SLOW });
    await page.getByLabel("word timings").check();
    await dropFiles(page, [
      { name: "librispeech.wav", type: "audio/wav", path: testdata("librispeech_1089-134686-0001.wav") },
    ]);
    for (const file of ["jfk.wav", "ljspeech.wav", "librispeech.wav"])
      await page.locator(`tr[data-file="${file}"][data-state="Succeeded"]`).waitFor({ timeout: SLOW });
    const states = (await seen(page, "states")).filter((s) => s !== "Uploading");
    assert.deepEqual(states, ["Queued", "Running", "Succeeded"]);
    await screenshot(page, "transcribe");
    const link = page.locator('tr[data-file="jfk.wav"] a');
    inferenceId = decodeURIComponent((await link.getAttribute("href"))!.split("/").at(-1)!);
  });

  await t.test("the instance count rises from 0 and falls back after the cooldown", async () => {
    await endpointPage.getByTestId("count-inservice").filter({ hasText: /^0$/ }).waitFor({ timeout: 60_000 });
    await waitFor(
      async () => (await seen(endpointPage, "inService")).join() === "0,1,0",
      60_000,
      "0 → 1 → 0",
    );
    assert.ok(
      (await seen(endpointPage, "pending")).includes("1"),
      "the instance was Pending while it started",
    );
    const activities = endpointPage.getByTestId("activities");
    await activities.getByText("1 → 0").waitFor({ timeout: 10_000 });
    const text = (await activities.textContent()) ?? "";
    assert.match(text, /0 → 1/);
    assert.match(
      text,
      /0 → 1.*policy \w+ \((StepScaling|TargetTrackingScaling)\): \w+/,
      "the cause is shown",
    );
    assert.match(
      (await endpointPage.locator("body").textContent()) ?? "",
      /ApproximateBacklogSizePerInstance at 1/,
    );
    await screenshot(endpointPage, "endpoint");
  });

  await t.test("the transcript beside its audio: text, a click on a segment seeks the player", async () => {
    await page.locator('tr[data-file="jfk.wav"] a').click();
    const segments = page.getByTestId("segments");
    await segments.waitFor();
    const text = normalize((await segments.textContent()) ?? "");
    assert.match(text, /ask not what your country can do for you/, text);
    const buttons = segments.locator("button.segment");
    const target = buttons.nth((await buttons.count()) - 1);
    const start = Number(await target.getAttribute("data-start"));
    assert.ok(start > 1, `the last segment starts at ${start}`);
    await target.click();
    const t0 = await playerTime(page);
    assert.ok(t0 >= start - 0.01 && t0 < start + 1.5, `player at ${t0}, segment at ${start}`);
    await page
      .locator('li[aria-current="true"] button.segment')
      .filter({ hasText: (await target.textContent())!.slice(5, 25) })
      .waitFor();
    // The keyboard does the same: focus the first segment and press Enter.
    await buttons.first().focus();
    await page.keyboard.press("Enter");
    const t1 = await playerTime(page);
    assert.ok(t1 < 1.5, `player at ${t1} after Enter on the first segment`);
    await page.evaluate(`document.querySelector("audio").pause()`);
    await screenshot(page, "transcript");
    // Downloads in each format, rendered from the JSON result.
    for (const [format, pattern] of [
      ["srt", /^1\n00:00:0\d,\d{3} --> /],
      ["vtt", /^WEBVTT\n/],
      ["text", /ask not what your country/i],
    ] as const) {
      const href = await page.locator(`.downloads a[href$="format=${format}"]`).getAttribute("href");
      const res = await page.request.get(k.url + href);
      assert.equal(res.status(), 200);
      assert.match(await res.text(), pattern);
    }
    // Word timings, where they were asked for: each word with its times.
    await page.goBack();
    await page.locator('tr[data-file="librispeech.wav"] a').click();
    await page.getByTestId("segments").waitFor();
    const words = page.locator(".segments .word");
    assert.ok((await words.count()) > 4, `${await words.count()} words`);
    assert.match((await words.first().getAttribute("title")) ?? "", /^0:\d\d\.\d–0:\d\d\.\d$/);
  });

  await t.test("cancel a queued invocation from the live list", async () => {
    // An endpoint with no instance and no scaling keeps its work queued.
    await k.api.endpoint("parked", { image: `local:${noopModelServer}` }, { initialInstanceCount: 0 });
    const input = await k.api.put("kikitori", "in/jfk.wav", readFileSync(testdata("jfk.wav")), "audio/wav");
    const id = (await k.api.ok("POST", "/v1/endpoints/parked/invocations", { inputLocation: input }))
      .inferenceId;
    await page.goto(`${k.url}/#/invocations?endpoint=parked`);
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.and(page.locator('[data-state="Queued"]')).waitFor();
    assert.equal(await row.locator('td[data-label="Queue"]').textContent(), "1");
    await screenshot(page, "invocations");
    await row.getByRole("button", { name: /Cancel/ }).click();
    await page.locator(`tr[data-id="${id}"][data-state="Cancelled"]`).waitFor({ timeout: 10_000 });
    assert.equal((await k.api.ok("GET", `/v1/invocations/${id}`)).state, "Cancelled");
    await row.getByRole("link").click();
    const doc = page.getByTestId("failure-document");
    await doc.waitFor();
    assert.match((await doc.textContent()) ?? "", /"ErrorCode": "Cancelled"/);
  });

  await t.test("models and keys page", async () => {
    await page.goto(`${k.url}/#/models`);
    // The default model's row carries the "default" mark (its quantized sibling is listed beside it).
    await page
      .getByTestId("model-cache")
      .getByRole("cell", { name: `${k.config.defaultModel} default`, exact: true })
      .waitFor();
    await screenshot(page, "models");
  });

  await t.test(
    "a phone-sized screen: no page scrolls sideways; the menu works from the keyboard",
    async () => {
      const phone = await browser.newContext({
        viewport: { width: 390, height: 844 },
        isMobile: true,
        hasTouch: true,
      });
      await phone.addCookies(await context.cookies());
      const p = await phone.newPage();
      for (const hash of [
        "#/",
        "#/invocations",
        "#/transcribe",
        "#/models",
        `#/invocations/${inferenceId}`,
      ]) {
        await p.goto(`${k.url}/${hash}`);
        await p.locator("main h1").first().waitFor();
        await p.waitForTimeout(300);
        const [scroll = 0, width = 0] = await p.evaluate<number[]>(
          `[document.documentElement.scrollWidth, window.innerWidth]`,
        );
        assert.ok(scroll <= width, `${hash}: ${scroll} px wide in a ${width} px screen`);
      }
      await p.goto(`${k.url}/#/invocations`);
      await p.locator("main h1").waitFor();
      await screenshot(p, "phone-invocations");
      await phone.close();
      // Keyboard: Tab to the Transcribe link and press Enter.
      await page.goto(`${k.url}/#/`);
      await page.locator("main h1").first().waitFor();
      for (let i = 0; i < 10; i++) {
        await page.keyboard.press("Tab");
        if ((await page.evaluate(`document.activeElement?.textContent`)) === "Transcribe") break;
      }
      await page.keyboard.press("Enter");
      await page.waitForURL(/#\/transcribe$/);
    },
  );

  await t.test("no request left the server, and the screenshots are real pictures", () => {
    assert.ok(requests.length > 20);
    assert.deepEqual(
      requests.filter((u) => !u.startsWith(k.url)),
      [],
    );
    assert.equal(shots.length, 6);
    for (const file of shots) {
      assert.deepEqual(readFileSync(file).subarray(1, 4).toString(), "PNG", file);
      assert.ok(statSync(file).size > 10_000, `${file}: ${statSync(file).size} bytes`);
    }
  });
});
