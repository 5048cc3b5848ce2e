// Browser half of tests/browser/test_map_browser.py (driven by it, not run alone).
//
// Env: CONSOLE_URL, CONSOLE_TOKEN, ARTIFACT_DIR, INCIDENT (JSON {id, lon, lat}), ALERT_ID,
// ZONE (JSON [lon, lat] inside the alert's zone),
// BULK (number of incidents the Python side adds on `need-bulk`).
// Line protocol as console_flow.mjs: `STEP <name> <json>` on stdout; after a `need-` step
// one line (`GO`) on stdin. Exit code 0 = every check passed.
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
const target = JSON.parse(env("INCIDENT"));
const alertId = env("ALERT_ID");
const bulk = Number(env("BULK"));

const lines = createInterface({ input: process.stdin });
const waiting = [];
lines.on("line", (line) => { const next = waiting.shift(); if (next) next(line); });
const step = (name, data = {}) => process.stdout.write(`STEP ${name} ${JSON.stringify(data)}\n`);
const need = (name, data = {}) => new Promise((resolve) => { waiting.push(resolve); step(name, data); });

const userDataDir = mkdtempSync(join(tmpdir(), "vigie-chromium-"));
const browser = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // WebGL through SwiftShader (software): no GPU on the test machines
  args: [
    "--headless", "--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1440, height: 1000 },
  locale: "fr-FR",
  timezoneId: "Europe/Paris",
});
const page = browser.pages()[0] || await browser.newPage();
const external = [];
page.on("request", (req) => { if (!req.url().startsWith(url)) external.push(req.url()); });
const consoleErrors = [];
page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text()); });
page.on("pageerror", (err) => consoleErrors.push(String(err)));

const zoom = () => page.evaluate(() => window.VigieMap.map.getZoom());
const center = () => page.evaluate(() => window.VigieMap.map.getCenter().toArray());
// resolves once the map has finished moving and drawing
const idle = () => page.evaluate(() => new Promise((resolve) => {
  const map = window.VigieMap.map;
  if (!map.isMoving() && map.loaded()) requestAnimationFrame(() => (map.loaded() ? resolve() : map.once("idle", resolve)));
  else map.once("idle", resolve);
}));
const mapCount = (key) => page.evaluate((k) => Number(document.getElementById("map").dataset[k] || -1), key);

async function details(expected) {
  await page.locator("#details[open]").waitFor({ timeout: 5_000 });
  const text = await page.locator("#details-body").textContent();
  if (!text.includes(expected)) throw new Error(`details lack "${expected}": ${text.slice(0, 200)}`);
}

async function closeDetails() {
  await page.keyboard.press("Escape");
  await page.locator("#details[open]").waitFor({ state: "detached", timeout: 5_000 }).catch(() => {});
  await page.waitForFunction(() => !document.getElementById("details").open);
}

// the page coordinates of a point of the map
async function pagePoint(lngLat) {
  return page.evaluate((ll) => {
    const map = window.VigieMap.map;
    const p = map.project(ll);
    const box = map.getCanvas().getBoundingClientRect();
    return { x: box.left + p.x, y: box.top + p.y };
  }, lngLat);
}

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// a programmatic pan / zoom sequence (4 eases of 1.2 s from the current view and back), timed
// frame by frame with requestAnimationFrame: frame count, p50, p95, max (ms)
async function measureFrames() {
  const frames = await page.evaluate(() => new Promise((resolve) => {
    const map = window.VigieMap.map;
    const deltas = [];
    let last = performance.now();
    let running = true;
    const tick = (t) => { deltas.push(t - last); last = t; if (running) requestAnimationFrame(tick); };
    requestAnimationFrame((t) => { last = t; requestAnimationFrame(tick); });
    const z = map.getZoom(), c = map.getCenter();
    const moves = [
      { zoom: z + 2, duration: 1200 },
      { center: [2.35, 48.6], duration: 1200 },
      { center: [2.2, 48.68], zoom: z + 1, duration: 1200 },
      { zoom: z, center: c, duration: 1200 },
    ];
    const next = () => {
      const m = moves.shift();
      if (!m) { running = false; return setTimeout(() => resolve(deltas), 50); }
      map.once("moveend", next);
      map.easeTo(m);
    };
    next();
  }));
  frames.sort((a, b) => a - b);
  const r = (v) => Math.round(v * 10) / 10;
  return {
    frames: frames.length, p50: r(percentile(frames, 0.5)), p95: r(percentile(frames, 0.95)),
    max: r(frames[frames.length - 1]),
  };
}

let ok = false;
try {
  await page.goto(`${url}/#token=${encodeURIComponent(token)}`);
  await page.waitForFunction(() => Number(document.getElementById("map")?.dataset.incidents) > 0, null, { timeout: 15_000 });
  await page.locator("#hex-legend li").first().waitFor();
  await idle();
  const webgl = await page.evaluate(() => {
    const gl = window.VigieMap.map.painter?.context?.gl;
    return gl ? gl.getParameter(gl.VERSION) : null;
  });
  const loaded = {
    incidents: await mapCount("incidents"),
    hexagons: await mapCount("hexagons"),
    zones: await mapCount("zones"),
    legend: await page.locator("#hex-legend li").count(),
    legendTitle: await page.locator(".hex-legend-title").textContent(),
    layers: await page.evaluate(() => window.VigieMap.map.getStyle().layers.map((l) => l.id)),
    jurisdictions: await page.evaluate(() => window.VigieMap.map.querySourceFeatures("jurisdictions").length),
    zoom: await zoom(),
    webgl,
  };
  // the hexagons are drawn: some rendered hex features under the canvas
  loaded.hexRendered = await page.evaluate(() => window.VigieMap.map.queryRenderedFeatures({ layers: ["hex7-fill"] }).length);
  step("loaded", loaded);
  await page.locator(".map-panel").screenshot({ path: join(artifacts, "map-overview.png") });

  // zoom with the buttons
  const z0 = await zoom();
  await page.getByRole("button", { name: "Zoomer", exact: true }).click();
  await idle();
  const z1 = await zoom();
  await page.getByRole("button", { name: "Dézoomer", exact: true }).click();
  await idle();
  const z2 = await zoom();
  step("zoom-buttons", { z0, z1, z2 });

  // keyboard: Tab reaches the map canvas, + / - zoom, arrows pan
  await page.locator(".maplibregl-canvas").focus();
  const focused = await page.evaluate(() => document.activeElement?.classList.contains("maplibregl-canvas"));
  const k0 = await zoom();
  await page.keyboard.press("Equal"); // "+" / "=" key
  await idle();
  const k1 = await zoom();
  await page.keyboard.press("Minus");
  await idle();
  const k2 = await zoom();
  const c0 = await center();
  await page.keyboard.press("ArrowRight");
  await idle();
  await page.keyboard.press("ArrowUp");
  await idle();
  const c1 = await center();
  step("keyboard", { focused, k0, k1, k2, c0, c1 });

  // zoom to the lone incident: its point is drawn unclustered; a click opens its details
  await page.evaluate((t) => window.VigieMap.map.jumpTo({ center: [t.lon, t.lat], zoom: 15 }), target);
  await idle();
  const rendered = await page.evaluate(() => window.VigieMap.map.queryRenderedFeatures({ layers: ["points"] })
    .map((f) => f.properties.incident_id));
  const at = await pagePoint([target.lon, target.lat]);
  await page.mouse.click(at.x, at.y);
  await details("Signalements fusionnés");
  const title = await page.locator("#details-title").textContent();
  await page.screenshot({ path: join(artifacts, "map-incident-details.png") });
  step("clicked-incident", { rendered, title });
  await closeDetails();
  await page.locator(".map-panel").screenshot({ path: join(artifacts, "map-street-zoom.png") });

  // a click inside an alert zone opens the alert's details
  const zone = JSON.parse(env("ZONE")); // [lon, lat] of the centre of one of its cells
  await page.evaluate((c) => window.VigieMap.map.jumpTo({ center: c, zoom: 14 }), zone);
  await idle();
  const zoneAt = await pagePoint(zone);
  // the zone's centre cell may hold an incident point: click beside it, inside the cell
  await page.mouse.click(zoneAt.x + 20, zoneAt.y + 20);
  await details("Observés / attendus");
  step("clicked-zone", { title: await page.locator("#details-title").textContent() });
  await closeDetails();

  // the keyboard list of the incidents in view: Tab to it, Enter opens the details
  await page.locator(".map-list-box summary").focus();
  await page.keyboard.press("Enter");
  const firstItem = page.locator("#map-list button").first();
  await firstItem.waitFor();
  await page.keyboard.press("Tab");
  const onItem = await page.evaluate(() => document.activeElement?.dataset?.incidentId || null);
  await page.keyboard.press("Enter");
  await details("Signalements fusionnés");
  step("keyboard-list", { onItem, items: await page.locator("#map-list button").count() });
  await closeDetails();

  // a layer toggle hides the hexagons
  await page.locator('#map-layers input[data-layer="hexagons"]').uncheck();
  const hexHidden = await page.evaluate(() => window.VigieMap.map.getLayoutProperty("hex7-fill", "visibility"));
  await page.locator('#map-layers input[data-layer="hexagons"]').check();
  step("toggle", { hexHidden });

  // many incidents: the Python side inserts them, a refresh draws them, then a measured
  // programmatic pan / zoom (frame times from requestAnimationFrame); the same moves over
  // the few incidents first, as the baseline of this machine (software WebGL, shared CPU)
  await page.evaluate(() => window.VigieMap.map.fitBounds([[2.0, 48.35], [2.55, 48.75]], { duration: 0 }));
  await idle();
  step("frames-baseline", { incidents: await mapCount("incidents"), ...(await measureFrames()) });
  await need("need-bulk");
  await page.evaluate(() => document.querySelector("#filters").dispatchEvent(new Event("change")));
  await page.waitForFunction((n) => Number(document.getElementById("map").dataset.incidents) >= n, bulk, { timeout: 60_000 });
  await page.evaluate(() => window.VigieMap.map.fitBounds([[2.0, 48.35], [2.55, 48.75]], { duration: 0 }));
  await idle();
  const frameStats = { incidents: await mapCount("incidents"), ...(await measureFrames()) };
  await idle();
  await page.locator(".map-panel").screenshot({ path: join(artifacts, "map-20k.png") });
  step("frames", frameStats);

  if (external.length) throw new Error(`requests outside the console: ${external.join(", ")}`);
  step("done", { consoleErrors });
  ok = true;
} catch (err) {
  step("error", { message: String(err && err.message || err) });
  await page.screenshot({ path: join(artifacts, "map-failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
  rmSync(userDataDir, { recursive: true, force: true });
  lines.close();
}
process.exit(ok ? 0 : 1);
