/** Debian's Chromium driven by playwright-core, as scripts/setup installs them (no browser download). */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { repoRoot, tempDir } from "../helpers/fixtures.js";

export const CHROMIUM = process.env.KIKITORI_CHROMIUM ?? "/usr/bin/chromium";

/** Why the browser tests cannot run here, or undefined when they can (scripts/setup provides both). */
export function missing(): string | undefined {
  if (!existsSync(CHROMIUM))
    return `no Chromium at ${CHROMIUM}: run scripts/setup (apt-get install chromium)`;
  if (!existsSync(join(repoRoot, "web", "dist", "index.html")))
    return "the dashboard is not built (web/dist): run scripts/setup or npm run build:web";
  return undefined;
}

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // The network here is closed: no background fetches, no QUIC, no updates; a fresh profile each run.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--autoplay-policy=no-user-gesture-required",
    ],
    // Playwright gives each launch a new empty profile (--user-data-dir in a temporary directory).
  });
}

/**
 * Screenshots of each page: into docs/screenshots (linked from the README) with
 * KIKITORI_UPDATE_SCREENSHOTS=1, else into a temporary directory, so a test run leaves the tree as it was.
 */
export const screenshotDir =
  process.env.KIKITORI_UPDATE_SCREENSHOTS === "1"
    ? join(repoRoot, "docs", "screenshots")
    : tempDir("kk-shots-");
mkdirSync(screenshotDir, { recursive: true });

export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(screenshotDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
