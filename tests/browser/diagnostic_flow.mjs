// Browser half of tests/browser/test_diagnostic_browser.py (driven by it, not run alone).
//
// Env: CONSOLE_URL, CONSOLE_TOKEN, ARTIFACT_DIR, COMMUNE. Prints one line `RESULT <json>`
// with what the page showed; screenshots go to ARTIFACT_DIR/diagnostic-*.png.
import { chromium } from "playwright-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`missing env ${name}`);
  return value;
};
const url = env("CONSOLE_URL");
const artifacts = env("ARTIFACT_DIR");
const commune = env("COMMUNE");

const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "vigie-diag-")), {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 1000 },
  locale: "fr-FR",
  timezoneId: "Europe/Paris",
});
const result = { consoleErrors: [], external: [] };
try {
  const page = browser.pages()[0] || await browser.newPage();
  page.on("console", (msg) => { if (msg.type() === "error") result.consoleErrors.push(`${page.url().replace(url, "")}: ${msg.text()}`); });
  page.on("request", (req) => { if (!req.url().startsWith(url) && !req.url().startsWith("data:")) result.external.push(req.url()); });
  // the console's login keeps the token in sessionStorage: log in through the main page
  await page.goto(`${url}/#token=${encodeURIComponent(env("CONSOLE_TOKEN"))}`);
  await page.waitForSelector("#diagnostic-link", { state: "attached", timeout: 15000 });
  const t0 = Date.now();
  await page.goto(`${url}/static/diagnostic.html?commune=${commune}&weeks=12`);
  await page.waitForSelector("#diag-report section.page", { timeout: 30000 });
  await page.waitForFunction(() => Array.from(document.querySelectorAll("#diag-report img.chart"))
    .every((img) => img.complete && img.naturalWidth > 0), null, { timeout: 15000 });
  result.ms = Date.now() - t0;
  result.sections = await page.$$eval("#diag-report section.page", (s) => s.map((x) => x.id));
  result.charts = await page.$$eval("#diag-report img.chart", (imgs) =>
    imgs.map((i) => ({ alt: i.alt, width: i.naturalWidth })));
  result.title = await page.textContent("#diag-report h1");
  result.keyIncidents = await page.textContent("#diag-report .key div b");
  result.selected = await page.$eval("#d-commune", (s) => s.value);
  result.download = await page.$eval("#d-download", (a) => !a.hidden);
  await page.screenshot({ path: join(artifacts, "diagnostic-page.png"), fullPage: false });
  await page.screenshot({ path: join(artifacts, "diagnostic-page-full.png"), fullPage: true });
  // an unknown commune in the address: the page says why
  await page.goto(`${url}/static/diagnostic.html?commune=99999`);
  await page.waitForFunction(() => document.querySelector("#diag-status").textContent.includes("inconnue"),
    null, { timeout: 15000 });
  result.refused = await page.textContent("#diag-status");
} finally {
  await browser.close();
}
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
