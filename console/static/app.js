/* Vigie ops-room console: plain JS, no remote asset (works offline); the map is map.js. */
"use strict";

(function () {
  const TOKEN_KEY = "vigie.token";
  const WALL_KEY = "vigie.wall";
  const TZ = "Europe/Paris";
  const fmtTime = new Intl.DateTimeFormat("fr-FR", { timeZone: TZ, hour: "2-digit", minute: "2-digit" });
  const fmtDateTime = new Intl.DateTimeFormat("fr-FR", {
    timeZone: TZ, day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit",
  });
  const fmtDay = new Intl.DateTimeFormat("fr-FR", { timeZone: "UTC", weekday: "short" });
  const num = (n) => Number(n).toLocaleString("fr-FR");
  const $ = (id) => document.getElementById(id);

  const state = {
    token: null, me: null, labels: {}, kinds: {}, communes: {}, jurisdictions: {},
    incidentOffset: 0, incidentNext: null, alerts: new Map(), source: null,
    refreshTimers: {}, pendingAction: null, session: 0, streamRetry: 0,
  };

  // ---- helpers ------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  const catLabel = (c) => state.labels[c] || c;
  const communeName = (code) => state.communes[code] || code;
  const when = (epoch) => fmtDateTime.format(new Date(epoch * 1000));

  class AuthError extends Error {}
  // the answer of a request sent before a logout: dropped, never rendered
  class SessionEnded extends Error {}

  async function api(path, options) {
    const session = state.session;
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers.Authorization = "Bearer " + state.token;
    const response = await fetch(path, opts);
    const body = await response.json().catch(() => ({}));
    if (session !== state.session) throw new SessionEnded("session terminée");
    if (response.status === 401) throw new AuthError("jeton refusé");
    if (!response.ok) throw new Error(body.message || "erreur " + response.status);
    return body;
  }

  function filterParams(extra) {
    const params = new URLSearchParams();
    for (const id of ["category", "insee", "jurisdiction"]) {
      const v = $("f-" + id).value;
      if (v) params.set(id, v);
    }
    const span = Number($("f-range").value);
    params.set("since", String(Math.floor(Date.now() / 1000) - span));
    for (const [k, v] of Object.entries(extra || {})) params.set(k, v);
    return params.toString();
  }

  // ---- login --------------------------------------------------------------------------
  function readToken() {
    const match = location.hash.match(/token=([^&]+)/);
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function showLogin(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearSession();
    $("logout").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    setLive(false);
    $("token-input").focus();
  }

  // Logout (or a refused token): close the stream, drop every answer still on its way and
  // remove every piece of data from the page - hiding it is not enough.
  function clearSession() {
    state.session += 1;
    state.token = null;
    state.me = null;
    if (state.source) state.source.close();
    state.source = null;
    state.streamRetry = 0;
    for (const timer of Object.values(state.refreshTimers)) clearTimeout(timer);
    state.refreshTimers = {};
    Object.assign(state, {
      labels: {}, kinds: {}, communes: {}, jurisdictions: {}, alerts: new Map(),
      incidentOffset: 0, incidentNext: null, pendingAction: null,
    });
    for (const id of ["details", "action-dialog"]) if ($(id).open) $(id).close();
    $("main").hidden = true;
    $("who").textContent = "";
    showPartner(null);
    $("filters").reset();
    for (const id of ["f-category", "f-insee", "f-jurisdiction"]) $(id).length = 1;
    for (const node of document.querySelectorAll(".kpi-value")) {
      node.textContent = "–";
      node.classList.remove("bump");
    }
    for (const id of ["trend", "by-category", "by-commune", "by-jurisdiction", "incident-rows",
      "alert-feed", "details-body"]) $(id).replaceChildren();
    if (window.VigieMap) window.VigieMap.clear();
    $("trend").setAttribute("aria-label", "Tendance sur 7 jours");
    for (const id of ["alerts-count", "map-note", "action-summary", "action-error"]) $(id).textContent = "";
    $("details-title").textContent = "Détails";
    $("action-comment").value = "";
  }

  async function start() {
    state.token = readToken();
    if (!state.token) return showLogin();
    const session = state.session;
    try {
      state.me = await api("/api/me");
    } catch (err) {
      if (err instanceof SessionEnded) return;
      return showLogin(err instanceof AuthError ? "Jeton refusé." : "Serveur injoignable.");
    }
    $("login").hidden = true;
    $("main").hidden = false;
    $("logout").hidden = false;
    const roleLabel = { operator: "opérateur", partner: "partenaire" }[state.me.role] || "lecture seule";
    $("who").textContent = state.me.name + " (" + roleLabel + ")";
    showPartner(state.me.partner);
    try {
      await loadReference();
    } catch (err) {
      return report(err);
    }
    if (session !== state.session) return;
    connectStream(state.me.stream_token);
    await refreshAll();
  }

  // A partner sees its perimeter (the server only ever answers inside it).
  function showPartner(partner) {
    const banner = $("partner-banner");
    $("partners-link").hidden = !(state.me && state.me.role === "operator");
    if (!partner) { banner.hidden = true; banner.textContent = ""; return; }
    const communes = partner.communes.map((c) => c.name).join(", ") || "aucune commune";
    const cats = partner.categories.length ? " · catégories : " + partner.categories.join(", ") : "";
    banner.textContent = "Périmètre de " + partner.name + " : " + communes + cats +
      (partner.active ? "" : " (partenaire désactivé : aucune donnée)");
    banner.hidden = false;
  }

  // ---- reference data, filters, map outlines ------------------------------------------
  async function loadReference() {
    const [filters, geo, juris] = await Promise.all([
      api("/api/refdata/filters"), api("/api/refdata/communes.geojson"),
      api("/api/refdata/jurisdictions.geojson"),
    ]);
    fillSelect("f-category", filters.categories.map((c) => [c.value, c.label]));
    fillSelect("f-insee", filters.communes.map((c) => [c.insee, c.name]));
    fillSelect("f-jurisdiction", filters.jurisdictions.map((j) => [j.id, j.name]));
    filters.categories.forEach((c) => (state.labels[c.value] = c.label));
    filters.source_kinds.forEach((k) => (state.kinds[k.value] = k.label));
    filters.communes.forEach((c) => (state.communes[c.insee] = c.name));
    filters.jurisdictions.forEach((j) => (state.jurisdictions[j.id] = j.name));
    if (window.VigieMap) await window.VigieMap.setReference(geo, juris);
    else $("map-note").textContent = "Carte indisponible : bibliothèque absente (make setup).";
  }

  function fillSelect(id, options) {
    const select = $(id);
    select.length = 1;
    for (const [value, label] of options) select.append(el("option", { value }, label));
  }

  // ---- live stream --------------------------------------------------------------------
  function setLive(on, text) {
    const live = $("live");
    live.className = "live " + (on ? "on" : "off");
    live.textContent = text || (on ? "En direct" : "Hors ligne");
  }

  function connectStream(streamToken) {
    if (state.source) state.source.close();
    const source = new EventSource("/api/stream?st=" + encodeURIComponent(streamToken));
    state.source = source;
    // a new stream token, then a new stream (after `delay` ms; none once logged out)
    const renew = (delay) => setTimeout(async () => {
      if (state.source !== source || !state.token) return;
      try {
        const me = await api("/api/me");
        if (state.source !== source) return;
        state.me = me;
        connectStream(me.stream_token);
      } catch (err) {
        if (err instanceof SessionEnded) return;
        if (err instanceof AuthError) showLogin("Session expirée.");
        else connectStream(streamToken);
      }
    }, delay);
    source.addEventListener("hello", (e) => {
      state.streamRetry = 0;
      const data = JSON.parse(e.data);
      setLive(data.store === "ok", data.store === "ok" ? "En direct" : "Base indisponible");
      // the server took its change baseline before `hello`: re-read everything once now
      schedule("data", refreshData);
      schedule("alerts", refreshAlerts);
    });
    source.addEventListener("status", (e) => {
      const data = JSON.parse(e.data);
      setLive(data.store === "ok", data.store === "ok" ? "En direct" : "Base indisponible");
    });
    source.addEventListener("change", (e) => {
      const data = JSON.parse(e.data);
      if (data.reports || data.incidents) schedule("data", refreshData);
      if (data.alerts || data.actions) schedule("alerts", refreshAlerts);
    });
    source.addEventListener("alert", (e) => upsertAlert(JSON.parse(e.data), true));
    // the server ends the stream when its token expires: reconnect at once with a new one
    source.addEventListener("expired", () => {
      source.close();
      renew(0);
    });
    source.onerror = () => {
      if (state.source !== source) return;
      setLive(false, "Reconnexion…");
      if (source.readyState === EventSource.CLOSED) {
        // refused (expired token, too many streams): new token, retry with a growing delay
        state.streamRetry = Math.min(state.streamRetry + 1, 5);
        renew(1000 * 2 ** state.streamRetry);
      }
    };
  }

  function schedule(key, fn) {
    clearTimeout(state.refreshTimers[key]);
    state.refreshTimers[key] = setTimeout(() => fn().catch(report), 100);
  }

  function report(err) {
    if (err instanceof SessionEnded) return;
    if (err instanceof AuthError) showLogin("Jeton refusé.");
    else console.warn("vigie:", err.message);
  }

  // ---- refreshers ---------------------------------------------------------------------
  async function refreshAll() {
    await Promise.all([refreshData(), refreshAlerts()]).catch(report);
  }

  async function refreshData() {
    await Promise.all([refreshSummary(), refreshMap(), refreshIncidents()]);
  }

  function setKpi(id, value) {
    const node = $(id);
    const text = num(value);
    if (node.textContent !== text) {
      node.textContent = text;
      node.classList.add("bump");
      setTimeout(() => node.classList.remove("bump"), 1500);
    }
  }

  // share of reports with a feedback beyond "reçu" within 1 h / 24 h (`feedback_share`)
  function setFeedbackKpi(fb) {
    const pct = (v) => (v === null || v === undefined ? "–" : Math.round(v * 100) + " %");
    const text = fb ? pct(fb.within_1h) + " / " + pct(fb.within_24h) : "–";
    const node = $("kpi-feedback");
    if (node && node.textContent !== text) node.textContent = text;
  }

  async function refreshSummary() {
    const s = await api("/api/summary?" + filterParams());
    setKpi("kpi-hour", s.last_hour);
    setKpi("kpi-today", s.today);
    setKpi("kpi-window", s.in_window);
    setKpi("kpi-incidents", s.open_incidents);
    setKpi("kpi-alerts", s.open_alerts);
    setFeedbackKpi(s.feedback);
    drawTrend(s.trend);
    drawBars("by-category", s.by_category.map((r) => [catLabel(r.category), r.n]));
    drawBars("by-commune", s.by_commune.map((r) => [r.commune || communeName(r.insee) || "Inconnue", r.n]));
    drawBars("by-jurisdiction", s.by_jurisdiction.map((r) => [r.name || r.jurisdiction || "Inconnue", r.n]));
  }

  function drawTrend(trend) {
    const max = Math.max(1, ...trend.map((d) => d.n));
    const box = $("trend");
    box.replaceChildren(...trend.map((d, i) => {
      const bar = el("div", { class: "bar" });
      bar.style.height = Math.round((d.n / max) * 100) + "%";
      const day = fmtDay.format(new Date(d.day + "T12:00:00Z"));
      return el("div", { class: "day" + (i === trend.length - 1 ? " today" : ""), title: d.day + " : " + num(d.n) },
        el("span", { class: "val" }, num(d.n)), bar, el("span", { class: "lbl" }, day));
    }));
    box.setAttribute("aria-label", "Tendance 7 jours : " + trend.map((d) => d.day.slice(5) + " " + d.n).join(", "));
  }

  function drawBars(id, rows) {
    const max = Math.max(1, ...rows.map((r) => r[1]));
    const list = $(id);
    if (!rows.length) return list.replaceChildren(el("li", { class: "muted" }, "Aucun signalement"));
    list.replaceChildren(...rows.slice(0, 12).map(([name, n]) => {
      const fill = el("div", { class: "fill" });
      fill.style.width = ((n / max) * 100).toFixed(1) + "%";
      return el("li", {}, el("span", { class: "name", title: name }, name),
        el("div", { class: "track", "aria-hidden": "true" }, fill), el("span", { class: "n" }, num(n)));
    }));
  }

  async function refreshMap() {
    if (window.VigieMap) await window.VigieMap.refresh(filterParams());
  }

  async function refreshIncidents() {
    const page = await api("/api/incidents?" + filterParams({ limit: 15, offset: state.incidentOffset }));
    state.incidentNext = page.next_offset;
    $("inc-prev").disabled = state.incidentOffset === 0;
    $("inc-next").disabled = page.next_offset === null;
    const rows = page.items.map((i) => el("tr", {},
      el("td", {}, when(i.last_occurred_at)),
      el("td", {}, catLabel(i.category)),
      el("td", {}, i.commune),
      el("td", {}, num(i.report_count)),
      el("td", {}, Math.round(i.confidence * 100) + " %"),
      el("td", {}, i.status === "open" ? "Ouvert" : "Clos"),
      el("td", {}, el("button", { type: "button", class: "ghost", onclick: () => showIncident(i.incident_id),
        "aria-label": "Détails de l'incident " + catLabel(i.category) + " à " + i.commune }, "Détails"))));
    $("incident-rows").replaceChildren(...(rows.length ? rows :
      [el("tr", {}, el("td", { colspan: "7", class: "muted" }, "Aucun incident sur la période."))]));
  }

  // ---- alerts -------------------------------------------------------------------------
  function alertMatches(a) {
    const cat = $("f-category").value, insee = $("f-insee").value;
    if (cat && a.category !== cat) return false;
    if (insee && !(a.insee || []).includes(insee)) return false;
    return a.emitted_at >= Math.floor(Date.now() / 1000) - Number($("f-range").value);
  }

  async function refreshAlerts() {
    const page = await api("/api/alerts?" + filterParams({ limit: 50 }));
    state.alerts = new Map(page.items.map((a) => [a.alert_id, a]));
    renderAlerts(null);
  }

  function upsertAlert(alert, live) {
    if (!alertMatches(alert)) return;
    state.alerts.set(alert.alert_id, alert);
    renderAlerts(live ? alert.alert_id : null);
    if (live) schedule("data", refreshData);
  }

  function renderAlerts(freshId) {
    const list = [...state.alerts.values()].sort((a, b) => b.emitted_at - a.emitted_at || (a.alert_id < b.alert_id ? -1 : 1));
    const feed = $("alert-feed");
    // the feed is rebuilt on every live alert or refresh: an operator tabbing through it
    // keeps the focus on the same alert's same control instead of losing it to the page
    const active = document.activeElement;
    const holder = active && feed.contains(active) ? active.closest("[data-alert-id]") : null;
    const kept = holder && { id: holder.dataset.alertId, action: active === holder ? null : active.dataset.action };
    feed.replaceChildren(...list.map((a) => alertItem(a, a.alert_id === freshId)));
    if (kept) {
      const item = [...feed.children].find((li) => li.dataset.alertId === kept.id);
      // the focused button may be gone (an acknowledged alert has no "Acquitter"): its alert
      const target = item && ((kept.action && item.querySelector(`[data-action="${kept.action}"]`)) || item);
      if (target) target.focus({ preventScroll: true });
    }
    $("alerts-empty").hidden = list.length > 0;
    $("alerts-count").textContent = list.length ? "(" + list.length + ")" : "";
  }

  function alertItem(a, fresh) {
    const places = (a.insee || []).map(communeName).join(", ") || "—";
    const op = a.operator_state;
    const handled = op ? " handled-" + op.action : "";
    let stateText;
    if (op) {
      const verb = op.action === "ack" ? "Acquittée" : "Clôturée";
      // a partner is not shown other principals' names and notes (empty)
      stateText = [el("strong", {}, verb), (op.operator ? " par " + op.operator : "") + " à " +
        fmtTime.format(new Date(op.at * 1000)) + (op.comment ? " : « " + op.comment + " »" : "")];
    } else {
      stateText = [el("strong", {}, a.status === "closed" ? "Terminée (détecteur)" : "À traiter")];
    }
    const canAct = state.me && state.me.role === "operator";
    const canAck = canAct || (state.me && state.me.role === "partner"); // "pris en compte"
    const closedByOp = op && op.action === "close";
    const title = catLabel(a.category) + " — " + places;
    return el("li", {
      class: "alert sev-" + a.severity + handled + " status-" + a.status + (fresh ? " fresh" : ""),
      "data-alert-id": a.alert_id, tabindex: "-1",
    },
      el("div", { class: "alert-head" }, el("span", { class: "badge" }, "Sévérité " + a.severity), el("strong", {}, title)),
      el("div", { class: "alert-meta" }, num(a.observed) + " observés pour " + num(Math.round(a.expected * 10) / 10) +
        " attendus · score " + num(Math.round(a.score * 10) / 10) + " · émise à " + fmtTime.format(new Date(a.emitted_at * 1000))),
      el("div", { class: "alert-state" }, stateText),
      el("div", { class: "alert-actions" },
        canAck && !op ? el("button", { type: "button", "data-action": "ack", "aria-label": "Acquitter l'alerte " + title,
          onclick: () => openAction(a, "ack") }, canAct ? "Acquitter" : "Prendre en compte") : null,
        canAct && !closedByOp ? el("button", { type: "button", class: "danger", "data-action": "close",
          "aria-label": "Clôturer l'alerte " + title, onclick: () => openAction(a, "close") }, "Clôturer") : null,
        el("button", { type: "button", class: "ghost", "data-action": "details", "aria-label": "Détails de l'alerte " + title,
          onclick: () => showAlert(a.alert_id) }, "Détails")));
  }

  function openAction(alert, action) {
    state.pendingAction = { alert, action, id: crypto.randomUUID ? crypto.randomUUID() : null, opener: document.activeElement };
    $("action-title").textContent = action === "ack" ? "Acquitter l'alerte" : "Clôturer l'alerte";
    $("action-summary").textContent = catLabel(alert.category) + " — " + (alert.insee || []).map(communeName).join(", ");
    $("action-comment").value = "";
    $("action-error").textContent = "";
    $("action-confirm").className = action === "ack" ? "primary" : "danger";
    $("action-dialog").showModal();
    $("action-comment").focus();
  }

  async function submitAction(e) {
    e.preventDefault();
    const pending = state.pendingAction;
    const comment = $("action-comment").value.trim();
    if (!comment) { $("action-error").textContent = "Le commentaire est obligatoire."; return; }
    const body = { action: pending.action, comment };
    if (pending.id) body.action_id = pending.id;
    $("action-confirm").disabled = true;
    try {
      await api("/api/alerts/" + encodeURIComponent(pending.alert.alert_id) + "/actions", {
        method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" },
      });
      // the buttons are re-rendered (by the live feed or the refresh): keep the keyboard user
      // on the alert they handled, from the moment the dialog closes
      const focusHandled = () => {
        const item = document.querySelector('[data-alert-id="' + CSS.escape(pending.alert.alert_id) + '"]');
        if (item) item.focus();
      };
      $("action-dialog").close();
      focusHandled();
      await refreshAlerts();
      focusHandled();
    } catch (err) {
      if (err instanceof SessionEnded) return;
      if (err instanceof AuthError) return showLogin("Jeton refusé.");
      $("action-error").textContent = "Échec : " + err.message;
    } finally {
      $("action-confirm").disabled = false;
    }
  }

  // ---- details ------------------------------------------------------------------------
  function kv(pairs) {
    return el("dl", { class: "kv" }, pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  }

  function openDetails(title, ...content) {
    $("details-title").textContent = title;
    $("details-body").replaceChildren(...content);
    if (!$("details").open) $("details").showModal();
  }

  async function showIncident(id) {
    try {
      const i = await api("/api/incidents/" + encodeURIComponent(id));
      openDetails("Incident — " + catLabel(i.category) + " à " + i.commune,
        kv([
          ["État", i.status === "open" ? "Ouvert" : "Clos"],
          ["Signalements fusionnés", num(i.report_count)],
          ["Sources", i.source_kinds.map((k) => state.kinds[k] || k).join(", ")],
          ["Confiance", Math.round(i.confidence * 100) + " %"],
          ["Précision", i.precision],
          ["Premier fait", when(i.first_occurred_at)],
          ["Dernier fait", when(i.last_occurred_at)],
          ["Circonscription", state.jurisdictions[i.jurisdiction] || i.jurisdiction || "—"],
        ]),
        el("h3", {}, "Signalements"),
        i.reports.length ? el("ul", { class: "reports" }, i.reports.map((r) =>
          el("li", {}, when(r.occurred_at) + " · " + (state.kinds[r.source_kind] || r.source_kind) + " (" + r.source_org + ") · " + catLabel(r.category))))
          : el("p", { class: "muted" }, "Signalements non retrouvés dans la base (hors période conservée)."),
        incidentActionForm(i));
    } catch (err) { report(err); }
  }

  // Outcomes of a closed incident, as agents/core/feedback.py OUTCOME_LABELS names them
  // (tests/unit/test_feedback.py checks that they agree).
  const OUTCOMES = [
    ["intervention", "Intervention effectuée"],
    ["interpellation", "Interpellation"],
    ["orientation_partenaire", "Transmis au partenaire compétent"],
    ["sans_suite", "Classé sans suite"],
    ["fausse_alerte", "Aucun incident constaté"],
  ];

  // "Pris en compte" / "clos" with an outcome and a note: each reporter of the incident is
  // told (the note stays in the console). Operators, and partners inside their perimeter.
  function incidentActionForm(i) {
    const role = state.me && state.me.role;
    if (role !== "operator" && role !== "partner") return el("div");
    const action = el("select", { id: "incident-action", "aria-label": "Action" },
      el("option", { value: "pris_en_compte" }, "Pris en compte"), el("option", { value: "clos" }, "Clos"));
    const outcome = el("select", { id: "incident-outcome", "aria-label": "Issue", disabled: "" },
      OUTCOMES.map(([v, label]) => el("option", { value: v }, label)));
    const note = el("textarea", { id: "incident-note", rows: "2", maxlength: "500", "aria-label": "Note (obligatoire)" });
    const result = el("p", { class: "muted", role: "status" });
    const button = el("button", { type: "submit", class: "primary" }, "Enregistrer");
    action.onchange = () => { outcome.disabled = action.value !== "clos"; };
    const newId = () => (crypto.randomUUID ? crypto.randomUUID() : null);
    let id = newId();  // kept for a retry after a failure: the action is recorded once
    const form = el("form", { class: "incident-action" }, el("h3", {}, "Traitement de l'incident"),
      action, outcome, note, button, result);
    form.onsubmit = async (e) => {
      e.preventDefault();
      const comment = note.value.trim();
      if (!comment) { result.textContent = "La note est obligatoire."; return; }
      const body = { action: action.value, comment };
      if (action.value === "clos") body.outcome = outcome.value;
      if (id) body.action_id = id;
      button.disabled = true;
      try {
        const r = await api("/api/incidents/" + encodeURIComponent(i.incident_id) + "/actions", {
          method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" },
        });
        result.textContent = "Enregistré : " + num(r.reports_notified) + " signalant(s) informé(s).";
        id = newId();
        button.disabled = false;
      } catch (err) {
        if (err instanceof SessionEnded) return;
        if (err instanceof AuthError) return showLogin("Jeton refusé.");
        result.textContent = "Échec : " + err.message;
        button.disabled = false;
      }
    };
    return form;
  }

  async function showAlert(id) {
    try {
      const a = await api("/api/alerts/" + encodeURIComponent(id));
      openDetails("Alerte — " + catLabel(a.category),
        kv([
          ["Communes", (a.insee || []).map(communeName).join(", ")],
          ["Sévérité", String(a.severity)],
          ["Observés / attendus", num(a.observed) + " / " + num(Math.round(a.expected * 10) / 10)],
          ["Score", num(Math.round(a.score * 10) / 10)],
          ["Fenêtre", when(a.window_start) + " → " + when(a.window_end)],
          ["Émise", when(a.emitted_at)],
          ["Cellules", String(a.cells.length)],
        ]),
        el("h3", {}, "Actions des opérateurs"),
        a.actions.length ? el("ul", {}, a.actions.map((x) => el("li", {},
          when(x.at) + " · " + (x.action === "ack" ? "acquittée" : "clôturée") + " par " + x.operator + " : « " + x.comment + " »")))
          : el("p", { class: "muted" }, "Aucune action."));
    } catch (err) { report(err); }
  }

  // ---- wiring -------------------------------------------------------------------------
  // what map.js needs from the page: the API client, the labels and the details panel
  window.VigieConsole = { api, catLabel, when, showIncident, showAlert };

  function setWall(on) {
    document.documentElement.classList.toggle("wall", on);
    $("wall-toggle").setAttribute("aria-pressed", String(on));
    localStorage.setItem(WALL_KEY, on ? "1" : "0");
  }

  function tick() {
    $("clock").textContent = new Intl.DateTimeFormat("fr-FR", {
      timeZone: TZ, hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).format(new Date());
  }

  document.addEventListener("DOMContentLoaded", () => {
    setWall(localStorage.getItem(WALL_KEY) === "1" || /[?&]mode=mur/.test(location.search));
    $("wall-toggle").addEventListener("click", () => setWall(!document.documentElement.classList.contains("wall")));
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
      $("token-input").value = "";
      start();
    });
    $("logout").addEventListener("click", () => showLogin("Déconnecté."));
    $("filters").addEventListener("change", () => { state.incidentOffset = 0; refreshAll(); });
    $("f-reset").addEventListener("click", () => {
      $("filters").reset();
      state.incidentOffset = 0;
      refreshAll();
    });
    $("inc-prev").addEventListener("click", () => {
      state.incidentOffset = Math.max(0, state.incidentOffset - 15);
      refreshIncidents().catch(report);
    });
    $("inc-next").addEventListener("click", () => {
      if (state.incidentNext !== null) state.incidentOffset = state.incidentNext;
      refreshIncidents().catch(report);
    });
    $("action-form").addEventListener("submit", submitAction);
    $("action-cancel").addEventListener("click", () => $("action-dialog").close());
    $("action-dialog").addEventListener("close", () => {
      const opener = state.pendingAction && state.pendingAction.opener;
      if (opener && document.contains(opener)) opener.focus();
    });
    tick();
    setInterval(tick, 1000);
    // rolling windows ("last hour") move even without new data
    setInterval(() => { if (state.token) refreshAll(); }, 30000);
    start();
  });
})();
