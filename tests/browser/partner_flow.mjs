// Browser half of tests/browser/test_partner_browser.py (driven by it, not run alone).
//
// Env: CONSOLE_URL, CONSOLE_TOKEN (a partner's), OPERATOR_TOKEN, ARTIFACT_DIR, CHROMIUM.
// Prints `STEP <name> <json>` lines; exit code 0 = every check passed.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`missing env ${name}`);
  return value;
};
const url = env("CONSOLE_URL");
const token = env("CONSOLE_TOKEN");
const artifacts = env("ARTIFACT_DIR");
const step = (name, data = {}) => process.stdout.write(`STEP ${name} ${JSON.stringify(data)}\n`);

const userDataDir = mkdtempSync(join(tmpdir(), "vigie-chromium-"));
const browser = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1440, height: 1000 },
  locale: "fr-FR",
  timezoneId: "Europe/Paris",
});
const page = browser.pages()[0] || await browser.newPage();
const consoleErrors = [];
page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text()); });
// every API answer the page received, to check that nothing outside the perimeter came in
const answers = [];
page.on("response", async (res) => {
  if (res.url().includes("/api/") && !res.url().includes("/api/stream") &&
      !res.url().includes(".geojson")) {
    try { answers.push(await res.text()); } catch { /* a body not kept: ignore */ }
  }
});

let ok = false;
try {
  await page.goto(`${url}/#token=${encodeURIComponent(token)}`);
  const banner = page.locator("#partner-banner");
  await banner.waitFor({ state: "visible", timeout: 10_000 });
  const bannerText = (await banner.textContent()).trim();
  await page.waitForSelector("#incident-rows tr", { timeout: 10_000 });
  await page.waitForSelector("#alert-feed li", { timeout: 10_000 });
  const rows = await page.locator("#incident-rows tr").allTextContents();
  const alerts = await page.locator("#alert-feed li").evaluateAll(
    (items) => items.map((li) => li.dataset.alertId));
  const communeOptions = await page.locator("#f-insee option").allTextContents();
  const buttons = await page.locator("#alert-feed li button").evaluateAll(
    (items) => items.map((b) => [b.dataset.action, b.textContent.trim()]));
  const who = (await page.locator("#who").textContent()).trim();
  const partnersLink = await page.locator("#partners-link").isVisible();
  await page.screenshot({ path: join(artifacts, "console-partner.png"), fullPage: true });
  step("partner-view", {
    banner: bannerText, rows, alerts, communeOptions, buttons, who, partnersLink,
    answers: answers.join("\n"), consoleErrors,
  });

  // the "Partenaires" page: refused to a partner by the server, served to an operator
  await page.goto(`${url}/static/partners.html`);
  await page.waitForFunction(() => document.querySelector("#p-status")?.textContent.trim());
  const refused = (await page.locator("#p-status").textContent()).trim();
  await page.evaluate((t) => sessionStorage.setItem("vigie.token", t), env("OPERATOR_TOKEN"));
  await page.reload();
  await page.waitForSelector("#p-rows tr", { timeout: 10_000 });
  const registry = await page.locator("#p-rows tr").allTextContents();
  await page.screenshot({ path: join(artifacts, "console-partners-page.png"), fullPage: true });
  step("partners-page", { refused, registry, consoleErrors });
  ok = true;
} catch (err) {
  step("error", { message: String(err && err.stack || err) });
} finally {
  await browser.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
