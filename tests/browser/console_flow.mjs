// Browser half of tests/browser/test_console_browser.py (driven by it, not run alone).
//
// Env: CONSOLE_URL, CONSOLE_TOKEN, ARTIFACT_DIR, ALERT_ID, EXPECT_TODAY, EXPECT_TODAY_AFTER.
// Line protocol on stdout/stdin: this script prints `STEP <name> <json>`; after a step
// whose name starts with `need-` it waits for one line (`GO`) on stdin, written by the
// Python side once it has inserted rows into the store. Exit code 0 = every check passed.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`missing env ${name}`);
  return value;
};
const url = env("CONSOLE_URL");
const token = env("CONSOLE_TOKEN");
const artifacts = env("ARTIFACT_DIR");
const alertId = env("ALERT_ID");

const lines = createInterface({ input: process.stdin });
const waiting = [];
lines.on("line", (line) => { const next = waiting.shift(); if (next) next(line); });
const step = (name, data = {}) => process.stdout.write(`STEP ${name} ${JSON.stringify(data)}\n`);
const need = (name, data = {}) => new Promise((resolve) => { waiting.push(resolve); step(name, data); });

const userDataDir = mkdtempSync(join(tmpdir(), "vigie-chromium-"));
// a persistent context on a fresh profile directory = Chromium's --user-data-dir
const browser = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1440, height: 1000 },
  locale: "fr-FR",
  timezoneId: "Europe/Paris",
});
const page = browser.pages()[0] || await browser.newPage();
// every EventSource the page opens, to check that logging out closes it
await page.addInitScript(() => {
  const Native = window.EventSource;
  window.__streams = [];
  window.EventSource = class extends Native {
    constructor(...args) { super(...args); window.__streams.push(this); }
  };
});
const external = [];
page.on("request", (req) => { if (!req.url().startsWith(url)) external.push(req.url()); });
const consoleErrors = [];
page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text()); });

async function textBecomes(selector, expected, timeout) {
  const t0 = Date.now();
  await page.waitForFunction(
    ([sel, want]) => document.querySelector(sel)?.textContent.trim() === want,
    [selector, expected], { timeout });
  return Date.now() - t0;
}

function checkContrast(selectors) {
  const rgb = (text) => (text.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (node) => {
    for (let n = node; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] >= 0.99)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const sel of selectors) {
    const node = document.querySelector(sel);
    if (!node) { out.push({ sel, ratio: 0, missing: true }); continue; }
    const [a, b] = [lum(rgb(getComputedStyle(node).color).slice(0, 3)), lum(background(node))];
    out.push({ sel, ratio: Math.round(((Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)) * 100) / 100 });
  }
  return out;
}

let ok = false;
try {
  await page.goto(`${url}/#token=${encodeURIComponent(token)}`);
  // the token left the URL for sessionStorage
  if (page.url().includes("token=")) throw new Error("token still in the URL");
  await textBecomes("#kpi-today", process.env.EXPECT_TODAY, 10_000);
  // the map (map.js) notes on its container what it drew
  await page.waitForFunction(() => Number(document.getElementById("map").dataset.incidents) > 0);
  const communes = await page.evaluate(() => Number(document.getElementById("map").dataset.communes));
  const incidents = await page.evaluate(() => Number(document.getElementById("map").dataset.incidents));
  step("loaded", { communes, incidents });

  // keyboard: the first Tab stop is the skip link
  await page.keyboard.press("Tab");
  const first = await page.evaluate(() => document.activeElement?.className);
  if (first !== "skip") throw new Error(`first Tab stop is "${first}", not the skip link`);

  // live counters: rows inserted behind the page's back show up without a reload
  // (a marker on the window survives only if the page is not reloaded). How fast is a
  // benchmark's matter; the waits here are generous so a loaded CI machine passes.
  await page.waitForFunction(() => document.querySelector("#live")?.textContent === "En direct");
  await page.evaluate(() => { window.__noReload = true; });
  await need("need-reports");
  await textBecomes("#kpi-today", process.env.EXPECT_TODAY_AFTER, 15_000);
  step("counters-updated", { at: Date.now(), sameDocument: await page.evaluate(() => window.__noReload === true) });

  // live alert feed
  await need("need-alert");
  const item = page.locator(`[data-alert-id="${alertId}"]`);
  await item.waitFor({ timeout: 15_000 });
  step("alert-received", { at: Date.now(), sameDocument: await page.evaluate(() => window.__noReload === true) });

  // hotspot zone drawn on the map once the page re-reads it
  await page.waitForFunction(() => Number(document.getElementById("map").dataset.zones) > 0, null, { timeout: 5_000 });

  // acknowledge with a comment, keyboard only; the feed is rebuilt meanwhile (a filter
  // change re-reads it, as a live alert would): the focus stays on the same button
  await item.locator('button[data-action="ack"]').focus();
  const reread = page.waitForResponse((r) => r.url().includes("/api/alerts"));
  await page.evaluate(() => document.querySelector("#filters").dispatchEvent(new Event("change")));
  await reread;
  await page.waitForFunction((id) => {
    const a = document.activeElement;
    return a?.dataset?.action === "ack" && a.closest("[data-alert-id]")?.dataset.alertId === id;
  }, alertId, { timeout: 5_000 });
  await page.keyboard.press("Enter");
  await page.locator("#action-comment").waitFor();
  const focused = await page.evaluate(() => document.activeElement?.id);
  if (focused !== "action-comment") throw new Error(`focus is on ${focused}, not the comment`);
  await page.keyboard.type("Patrouille envoyée, situation suivie");
  await page.keyboard.press("Tab"); // → Confirmer
  await page.keyboard.press("Enter");
  // the live feed may show the new state before the POST returns: wait until the dialog is
  // closed too, which is when the console hands the focus back
  await page.waitForFunction(
    (id) => !document.getElementById("action-dialog").open &&
      document.querySelector(`[data-alert-id="${id}"] .alert-state`)?.textContent.includes("Acquittée par"),
    alertId, { timeout: 5_000 });
  const after = await page.evaluate(() => document.activeElement?.dataset?.alertId);
  if (after !== alertId) throw new Error(`focus after the action is on ${after}, not the alert`);
  step("acknowledged", {});

  // WCAG AA contrast (4.5:1) of the texts on their effective background
  const contrast = await page.evaluate(checkContrast, [
    "h1", ".top .sub", "#clock", "#live", "#wall-toggle", ".who", ".filters label", ".kpi h2",
    ".kpi-value", ".kpi-alert .kpi-value", ".trend .lbl", ".legend", ".alert-head strong",
    ".badge", ".alert-meta", ".alert-state", 'button[data-action="close"]', ".bars .name",
    ".incidents th", ".incidents td", "#inc-title",
  ]);
  const weak = contrast.filter((c) => c.ratio < 4.5);
  if (weak.length) throw new Error(`contrast below 4.5:1: ${JSON.stringify(weak)}`);
  step("contrast", { min: Math.min(...contrast.map((c) => c.ratio)), checked: contrast.length });

  // details of an incident from the map's list (clicks on the map itself: test_map_browser.py)
  await page.locator(".map-list-box summary").click();
  await page.locator("#map-list button").first().click();
  await page.locator("#details[open]").waitFor();
  const details = await page.locator("#details-body").textContent();
  if (!details.includes("Signalements fusionnés")) throw new Error("incident details missing");
  await page.screenshot({ path: join(artifacts, "console-details.png") });
  await page.keyboard.press("Escape");

  await page.screenshot({ path: join(artifacts, "console-desk.png"), fullPage: true });
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.locator("#wall-toggle").click();
  await page.screenshot({ path: join(artifacts, "console-wall.png") });

  // logout: nothing of the data stays on screen nor in the DOM, the live stream closes
  await page.locator("#logout").click();
  await page.locator("#login").waitFor();
  await page.waitForTimeout(1500); // an answer or a refresh still on its way would land here
  await need("need-logged-out"); // the Python side waits for the server to see the stream go
  const leftovers = await page.evaluate(({ alertId, secrets }) => {
    const found = [];
    const main = document.getElementById("main");
    if (main.getClientRects().length || getComputedStyle(main).display !== "none") found.push("main visible");
    const nodes = document.querySelectorAll(
      "[data-alert-id], [data-incident-id], #map *, #trend *, .bars *, #incident-rows *, #alert-feed *, #details-body *");
    if (nodes.length) found.push(`${nodes.length} data nodes`);
    for (const sel of ["#f-category", "#f-insee", "#f-jurisdiction"]) {
      if (document.querySelector(sel).options.length !== 1) found.push(`${sel} options`);
    }
    for (const kpi of document.querySelectorAll(".kpi-value")) {
      if (kpi.textContent !== "–") found.push(`${kpi.id} = ${kpi.textContent}`);
    }
    if ([...document.querySelectorAll("dialog")].some((d) => d.open)) found.push("dialog open");
    const html = document.documentElement.outerHTML;
    for (const secret of [alertId, ...secrets]) if (html.includes(secret)) found.push(`"${secret}" in the DOM`);
    const streams = window.__streams.filter((s) => s.readyState !== EventSource.CLOSED);
    if (streams.length) found.push(`${streams.length} stream(s) open`);
    if (sessionStorage.getItem("vigie.token") !== null) found.push("token kept");
    return found;
  }, { alertId, secrets: ["inc-1", "Courcouronnes", "Patrouille envoyée", "alice", "Acquittée", "Rodéo"] });
  if (leftovers.length) throw new Error(`left after logout: ${leftovers.join("; ")}`);
  await page.screenshot({ path: join(artifacts, "console-logged-out.png") });
  step("logged-out", { streams: await page.evaluate(() => window.__streams.length) });

  // logging in again rebuilds everything
  await page.locator("#token-input").fill(token);
  await page.locator("#login-form button[type=submit]").click();
  await textBecomes("#kpi-today", process.env.EXPECT_TODAY_AFTER, 10_000);
  await page.waitForFunction(() => Number(document.getElementById("map").dataset.incidents) > 0);
  await page.locator(`[data-alert-id="${alertId}"]`).waitFor({ timeout: 5_000 });
  await page.waitForFunction(() => document.querySelector("#live")?.textContent === "En direct");
  step("logged-in-again", {});

  if (external.length) throw new Error(`requests outside the console: ${external.join(", ")}`);
  step("done", { consoleErrors });
  ok = true;
} catch (err) {
  step("error", { message: String(err && err.message || err) });
  await page.screenshot({ path: join(artifacts, "console-failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
  rmSync(userDataDir, { recursive: true, force: true });
  lines.close();
}
process.exit(ok ? 0 : 1);
