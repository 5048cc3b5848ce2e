/* Vigie console map: MapLibre GL JS (npm maplibre-gl, served from /static/vendor, no CDN).
 *
 * Layers (bottom to top): communes (fill + outline), jurisdictions (union of their communes,
 * drawn by the server), H3 hexagons of incident counts (choropleth, legend), alert zones
 * (cells of the open alerts), incidents (clustered points). No street basemap: none can be
 * packaged offline from the registries (see README); the vector layers carry the map.
 *
 * app.js drives it through `window.VigieMap` (setReference, refresh, clear) and gives it its
 * details panel through `window.VigieConsole` (showIncident, showAlert, api, catLabel).
 */
import * as maplibregl from "/static/vendor/maplibre-gl/maplibre-gl.mjs";

const $ = (id) => document.getElementById(id);
const num = (n) => Number(n).toLocaleString("fr-FR");
const HEX_COLORS = ["#fff3b0", "#fdc76a", "#f98e3f", "#e3502b", "#b4172c"];
const HEX_RES_ZOOM = 11; // r7 cells below this zoom, r8 from it on (both sent at once)
const LIST_SIZE = 50; // incidents in the keyboard list (those in view, most recent first)
const LABEL_ZOOM = 10.5; // commune names from this zoom on
// live changes re-read the layers at most this often (up to 20 000 rows each time); a filter
// change is applied at once
const LIVE_REFRESH_MS = 2000;
const LAYERS = {
  hexagons: ["hex7-fill", "hex7-line", "hex8-fill", "hex8-line"],
  incidents: ["clusters", "points"],
  zones: ["zone-fill", "zone-line"],
  communes: ["commune-fill", "commune-line"],
  jurisdictions: ["jurisdiction-line"],
};

const EMPTY = { type: "FeatureCollection", features: [] };
let map = null;
let ready = null; // resolves once the style is loaded
let bounds = null;
let lastParams = null;
let lastRead = { key: null, at: 0 };
let trailing = null; // the deferred re-read of a live change
let hexData = { 7: [], 8: [] }; // the hexagon features per resolution (for the legend)
let legendRes = null;
let incidents = []; // [{id, lon, lat, category, status, report_count, commune, last}]
let labels = []; // [{name, lngLat}]
const markers = { clusters: new Map(), labels: new Map() };
const hidden = new Set();

const ui = () => window.VigieConsole;

function style() {
  return {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#101a24" } }],
  };
}

function addLayers() {
  map.addSource("communes", { type: "geojson", data: EMPTY, promoteId: "insee" });
  map.addSource("jurisdictions", { type: "geojson", data: EMPTY });
  map.addSource("hex7", { type: "geojson", data: EMPTY });
  map.addSource("hex8", { type: "geojson", data: EMPTY });
  map.addSource("zones", { type: "geojson", data: EMPTY });
  map.addSource("incidents", {
    type: "geojson", data: EMPTY, cluster: true, clusterRadius: 44, clusterMaxZoom: 14,
  });
  map.addLayer({ id: "commune-fill", type: "fill", source: "communes",
    paint: { "fill-color": ["case", ["boolean", ["feature-state", "hover"], false], "#2b3d50", "#1c2834"] } });
  map.addLayer({ id: "commune-line", type: "line", source: "communes",
    paint: { "line-color": "#5b7088", "line-width": ["interpolate", ["linear"], ["zoom"], 8, 0.4, 13, 1.2] } });
  for (const res of [7, 8]) {
    const zooms = res === 7 ? { maxzoom: HEX_RES_ZOOM } : { minzoom: HEX_RES_ZOOM };
    map.addLayer({ id: "hex" + res + "-fill", type: "fill", source: "hex" + res, ...zooms,
      paint: { "fill-color": HEX_COLORS[0], "fill-opacity": 0.72 } });
    map.addLayer({ id: "hex" + res + "-line", type: "line", source: "hex" + res, ...zooms,
      paint: { "line-color": "#101a24", "line-width": 0.5, "line-opacity": 0.6 } });
  }
  map.addLayer({ id: "jurisdiction-line", type: "line", source: "jurisdictions",
    paint: { "line-color": "#9fc3ff", "line-width": ["interpolate", ["linear"], ["zoom"], 8, 1.6, 13, 3] } });
  map.addLayer({ id: "zone-fill", type: "fill", source: "zones",
    paint: { "fill-color": "#ff4d4d", "fill-opacity": 0.3 } });
  map.addLayer({ id: "zone-line", type: "line", source: "zones",
    paint: { "line-color": "#ff8a8a", "line-width": 2, "line-dasharray": [2, 1] } });
  map.addLayer({ id: "clusters", type: "circle", source: "incidents", filter: ["has", "point_count"],
    paint: {
      "circle-color": "#f5a524", "circle-opacity": 0.85, "circle-stroke-color": "#1a1200", "circle-stroke-width": 1.5,
      "circle-radius": ["step", ["get", "point_count"], 12, 10, 15, 100, 20, 1000, 26, 5000, 32],
    } });
  map.addLayer({ id: "points", type: "circle", source: "incidents", filter: ["!", ["has", "point_count"]],
    paint: {
      "circle-color": ["case", ["==", ["get", "status"], "open"], "#f5a524", "#8a9bad"],
      "circle-radius": ["+", 5, ["*", 2.5, ["sqrt", ["get", "report_count"]]]],
      "circle-stroke-color": "#1a1200", "circle-stroke-width": 1,
    } });
  for (const id of hidden) map.setLayoutProperty(id, "visibility", "none");
}

function create(container) {
  map = new maplibregl.Map({
    container,
    style: style(),
    bounds: bounds || [[1.9, 48.28], [2.6, 48.78]],
    fitBoundsOptions: { padding: 16 },
    minZoom: 7,
    maxZoom: 17,
    dragRotate: false,
    pitchWithRotate: false,
    touchPitch: false,
    attributionControl: { compact: true, customAttribution: "Communes : IGN – ADMIN EXPRESS, Licence Ouverte" },
    locale: {
      "Map.Title": "Carte des incidents : flèches pour se déplacer, + et − pour zoomer",
      "NavigationControl.ZoomIn": "Zoomer",
      "NavigationControl.ZoomOut": "Dézoomer",
      "NavigationControl.ResetBearing": "Réorienter vers le nord",
      "AttributionControl.ToggleAttribution": "Sources",
      "Popup.Close": "Fermer",
      "ScaleControl.Kilometers": "km",
      "ScaleControl.Meters": "m",
    },
  });
  map.touchZoomRotate.disableRotation();
  map.keyboard.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
  ready = new Promise((resolve) => map.once("load", resolve)).then(() => {
    // the sources line starts folded (its button unfolds it): the map stays unobstructed
    const attribution = container.querySelector(".maplibregl-ctrl-attrib");
    if (attribution) attribution.classList.remove("maplibregl-compact-show");
    addLayers();
    bindEvents();
  });
  return ready;
}

// ---- interaction --------------------------------------------------------------------------
function bindEvents() {
  const popup = new maplibregl.Popup({ closeButton: false, closeOnClick: false, className: "map-tip" });
  let hovered = null;
  map.on("mousemove", "commune-fill", (e) => {
    const f = e.features[0];
    if (hovered !== null && hovered !== f.id) map.setFeatureState({ source: "communes", id: hovered }, { hover: false });
    hovered = f.id;
    map.setFeatureState({ source: "communes", id: hovered }, { hover: true });
  });
  map.on("mouseleave", "commune-fill", () => {
    if (hovered !== null) map.setFeatureState({ source: "communes", id: hovered }, { hover: false });
    hovered = null;
    popup.remove();
  });
  map.on("mousemove", (e) => {
    const top = topFeature(e.point);
    map.getCanvas().style.cursor = top && top.layer.id !== "commune-fill" ? "pointer" : "";
    if (!top) return popup.remove();
    popup.setLngLat(e.lngLat).setText(describe(top)).addTo(map);
  });
  map.on("click", (e) => activate(topFeature(e.point)));
  map.on("moveend", () => {
    updateList();
    updateLabels();
    if (currentRes() !== legendRes) showLegend();
  });
  map.on("idle", updateClusterCounts);
}

const ORDER = ["points", "clusters", "zone-fill", "hex8-fill", "hex7-fill", "jurisdiction-line", "commune-fill"];

function topFeature(point) {
  const layers = ORDER.filter((id) => map.getLayer(id) && !hidden.has(id));
  const found = map.queryRenderedFeatures(point, { layers });
  found.sort((a, b) => ORDER.indexOf(a.layer.id) - ORDER.indexOf(b.layer.id));
  return found[0] || null;
}

function describe(f) {
  const p = f.properties;
  const c = ui();
  switch (f.layer.id) {
    case "points": return "Incident " + c.catLabel(p.category) + " à " + p.commune + " · " + p.report_count + " signalement(s)";
    case "clusters": return num(p.point_count) + " incidents — cliquer pour zoomer";
    case "zone-fill": return "Zone d'alerte " + c.catLabel(p.category) + ", sévérité " + p.severity;
    case "hex7-fill": case "hex8-fill": return num(p.n) + " incident" + (p.n > 1 ? "s" : "") + " dans cet hexagone";
    case "jurisdiction-line": return "Circonscription " + p.name;
    default: return p.name + " (" + p.insee + ")";
  }
}

async function activate(f) {
  if (!f) return;
  const p = f.properties;
  if (f.layer.id === "points") return ui().showIncident(p.incident_id);
  if (f.layer.id === "zone-fill") return ui().showAlert(p.alert_id);
  if (f.layer.id === "clusters") {
    const zoom = await map.getSource("incidents").getClusterExpansionZoom(p.cluster_id);
    map.easeTo({ center: f.geometry.coordinates, zoom: Math.min(zoom, map.getMaxZoom()) });
  }
}

// ---- data -----------------------------------------------------------------------------------
function ringCenter(geometry) {
  // label point: the vertex average of the commune's largest outer ring (good enough for a name)
  const polys = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  let best = polys[0][0];
  for (const poly of polys) if (poly[0].length > best.length) best = poly[0];
  let x = 0, y = 0;
  for (const [lon, lat] of best) { x += lon; y += lat; }
  return [x / best.length, y / best.length];
}

function boundsOf(geo) {
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const f of geo.features) {
    const polys = f.geometry.type === "Polygon" ? [f.geometry.coordinates] : f.geometry.coordinates;
    for (const poly of polys) for (const [x, y] of poly[0]) {
      minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
    }
  }
  return [[minX, minY], [maxX, maxY]];
}

async function setReference(communes, jurisdictions) {
  bounds = boundsOf(communes);
  labels = communes.features.map((f) => ({ name: f.properties.name, lngLat: ringCenter(f.geometry) }));
  if (!map) await create($("map"));
  else await ready;
  map.getSource("communes").setData(communes);
  $("map").dataset.communes = String(communes.features.length);
  map.getSource("jurisdictions").setData(jurisdictions);
  map.fitBounds(bounds, { padding: 16, duration: 0 });
  map.setMaxBounds(padBounds(bounds, 0.6));
  updateLabels();
}

function padBounds([[x0, y0], [x1, y1]], k) {
  const dx = (x1 - x0) * k, dy = (y1 - y0) * k;
  return [[x0 - dx, y0 - dy], [x1 + dx, y1 + dy]];
}

function hexBreaks(values) {
  // class limits at the quintiles of the counts (skewed data: a linear scale shows one hot cell)
  const sorted = values.slice().sort((a, b) => a - b);
  const out = [];
  for (const q of [0.2, 0.4, 0.6, 0.8]) {
    const v = sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    if (v !== undefined && v + 1 > (out[out.length - 1] || 1)) out.push(v + 1);
  }
  return out;
}

const currentRes = () => (map && map.getZoom() >= HEX_RES_ZOOM ? 8 : 7);

function paintHexagons(res, features) {
  hexData[res] = features;
  const breaks = hexBreaks(features.map((f) => f.properties.n));
  const expr = ["step", ["get", "n"], HEX_COLORS[0]];
  breaks.forEach((b, i) => expr.push(b, HEX_COLORS[Math.min(HEX_COLORS.length - 1, i + 1)]));
  map.setPaintProperty("hex" + res + "-fill", "fill-color", expr.length > 3 ? expr : HEX_COLORS[0]);
}

// the legend of the hexagons on screen (r7 or r8: their classes differ)
function showLegend() {
  const res = currentRes();
  legendRes = res;
  const features = hexData[res];
  const breaks = hexBreaks(features.map((f) => f.properties.n));
  const max = Math.max(0, ...features.map((f) => f.properties.n));
  const legend = $("hex-legend");
  legend.dataset.res = String(res);
  if (!features.length) return legend.replaceChildren(text("span", "muted", "Aucun incident à compter"));
  const lows = [1, ...breaks];
  const items = lows.map((lo, i) => {
    const hi = i + 1 < lows.length ? lows[i + 1] - 1 : max;
    const label = lo >= hi ? num(lo) : num(lo) + "–" + num(hi);
    const swatch = text("span", "swatch", "");
    swatch.style.background = HEX_COLORS[Math.min(HEX_COLORS.length - 1, i)];
    const li = text("li", "", "");
    li.append(swatch, " " + label);
    return li;
  });
  const cell = res === 7 ? "≈ 5 km²" : "≈ 0,7 km²";
  const title = text("span", "hex-legend-title", "Incidents par hexagone (H3 r" + res + ", " + cell + ")");
  const list = document.createElement("ul");
  list.append(...items);
  legend.replaceChildren(title, list);
}

function text(tag, cls, content) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  node.textContent = content;
  return node;
}

async function refresh(params) {
  if (!map) return;
  await ready;
  const key = params.replace(/(^|&)since=\d+/, ""); // the filters, not the moving window
  const wait = lastRead.at + LIVE_REFRESH_MS - Date.now();
  if (key === lastRead.key && wait > 0) {
    clearTimeout(trailing);
    trailing = setTimeout(() => refresh(params).catch((err) => console.warn("vigie:", err.message)), wait);
    return;
  }
  clearTimeout(trailing);
  lastRead = { key, at: Date.now() };
  lastParams = params;
  const data = await ui().api("/api/map/layers?" + params);
  if (!map || lastParams !== params) return; // logged out, or a newer refresh
  const f = data.incidents.fields;
  const at = Object.fromEntries(f.map((name, i) => [name, i]));
  incidents = data.incidents.rows.map((r) => ({
    id: r[at.incident_id], lon: r[at.lon], lat: r[at.lat], category: r[at.category],
    status: r[at.status], report_count: r[at.report_count], commune: r[at.commune], last: r[at.last_occurred_at],
  }));
  map.getSource("incidents").setData({
    type: "FeatureCollection",
    features: incidents.map((i) => ({
      type: "Feature",
      geometry: { type: "Point", coordinates: [i.lon, i.lat] },
      properties: { incident_id: i.id, category: i.category, status: i.status, report_count: i.report_count, commune: i.commune },
    })),
  });
  for (const res of [7, 8]) {
    map.getSource("hex" + res).setData(data.hexagons[res]);
    paintHexagons(res, data.hexagons[res].features);
  }
  map.getSource("zones").setData(data.zones);
  showLegend();
  $("map").dataset.incidents = String(incidents.length);
  $("map").dataset.hexagons = String(data.hexagons[currentRes()].features.length);
  $("map").dataset.zones = String(data.zones.features.length);
  $("map-note").textContent = num(incidents.length) + " incident(s) sur la carte" +
    (data.truncated ? " (limité aux " + num(data.limit) + " plus récents)" : "");
  updateList();
}

// the incidents in view, as buttons: the keyboard's way to an incident's details
function updateList() {
  const list = $("map-list");
  if (!map || !list) return;
  const view = map.getBounds();
  const shown = [];
  for (const i of incidents) { // most recent first (server order)
    if (view.contains([i.lon, i.lat])) shown.push(i);
    if (shown.length >= LIST_SIZE) break;
  }
  const c = ui();
  list.replaceChildren(...shown.map((i) => {
    const button = text("button", "ghost", c.catLabel(i.category) + " — " + i.commune + " · " +
      i.report_count + " sign. · " + c.when(i.last));
    button.type = "button";
    button.dataset.incidentId = i.id;
    button.addEventListener("click", () => c.showIncident(i.id));
    const li = document.createElement("li");
    li.append(button);
    return li;
  }));
  $("map-list-count").textContent = "(" + shown.length + (shown.length >= LIST_SIZE ? "+" : "") + ")";
}

// numbers on the clusters and commune names: HTML markers (no glyph server offline)
function syncMarkers(kind, wanted) {
  const have = markers[kind];
  for (const [key, marker] of have) if (!wanted.has(key)) { marker.remove(); have.delete(key); }
  for (const [key, make] of wanted) if (!have.has(key)) have.set(key, make().addTo(map));
}

function updateClusterCounts() {
  if (!map || !map.getSource("incidents")) return;
  const wanted = new Map();
  if (!hidden.has("clusters")) {
    for (const f of map.querySourceFeatures("incidents", { filter: ["has", "point_count"] })) {
      const id = f.properties.cluster_id;
      if (wanted.has(id)) continue;
      const [lon, lat] = f.geometry.coordinates;
      const n = f.properties.point_count;
      wanted.set(id, () => new maplibregl.Marker({ element: text("span", "cluster-count", num(n)) }).setLngLat([lon, lat]));
    }
  }
  syncMarkers("clusters", wanted);
}

function updateLabels() {
  if (!map) return;
  const wanted = new Map();
  if (map.getZoom() >= LABEL_ZOOM && !hidden.has("commune-fill")) {
    const view = map.getBounds();
    for (const l of labels) {
      if (view.contains(l.lngLat)) {
        wanted.set(l.name, () => new maplibregl.Marker({ element: text("span", "commune-label", l.name) }).setLngLat(l.lngLat));
      }
    }
  }
  syncMarkers("labels", wanted);
}

function setLayerVisible(group, on) {
  if (group === "hexagons") $("hex-legend").hidden = !on;
  for (const id of LAYERS[group]) {
    if (on) hidden.delete(id); else hidden.add(id);
    if (map && map.getLayer(id)) map.setLayoutProperty(id, "visibility", on ? "visible" : "none");
  }
  updateClusterCounts();
  updateLabels();
}

function clear() {
  for (const kind of Object.keys(markers)) markers[kind].clear();
  if (map) map.remove();
  map = null;
  ready = null;
  lastParams = null;
  lastRead = { key: null, at: 0 };
  clearTimeout(trailing);
  legendRes = null;
  hexData = { 7: [], 8: [] };
  incidents = [];
  labels = [];
  $("map").replaceChildren();
  for (const id of ["map-list", "hex-legend"]) $(id).replaceChildren();
  $("map-list-count").textContent = "";
  for (const key of ["communes", "incidents", "hexagons", "zones"]) delete $("map").dataset[key];
}

document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll("#map-layers input[data-layer]")) {
    box.addEventListener("change", () => setLayerVisible(box.dataset.layer, box.checked));
  }
});

window.VigieMap = {
  setReference,
  refresh,
  clear,
  get map() { return map; },
};
