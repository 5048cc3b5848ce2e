// The console's territorial diagnostic page: the same HTML document as `vigie diagnostic`
// (GET /api/diagnostic/report), its sections shown in the page. Token: the console's login.
"use strict";
(function () {
  const TOKEN_KEY = "vigie.token";
  const $ = (id) => document.getElementById(id);
  const token = sessionStorage.getItem(TOKEN_KEY);
  let downloadUrl = null;

  function status(text, isError) {
    $("diag-status").textContent = text;
    $("diag-status").className = isError ? "error" : "";
  }

  async function api(path) {
    const response = await fetch(path, { headers: { Authorization: "Bearer " + token } });
    if (!response.ok) {
      let message = "erreur " + response.status;
      try { message = (await response.json()).message || message; } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    return response;
  }

  function option(select, value, label) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    select.appendChild(o);
  }

  function query() {
    const params = new URLSearchParams();
    const commune = $("d-commune").value, jurisdiction = $("d-jurisdiction").value;
    if (commune) params.set("commune", commune);
    else if (jurisdiction) params.set("jurisdiction", jurisdiction);
    params.set("weeks", $("d-weeks").value || "12");
    return params;
  }

  async function show(params) {
    if (!params.has("commune") && !params.has("jurisdiction")) {
      status("Choisissez une commune ou une circonscription.", true);
      return;
    }
    history.replaceState(null, "", "?" + params.toString());
    status("Calcul du diagnostic…", false);
    $("diag-report").replaceChildren();
    try {
      const html = await (await api("/api/diagnostic/report?" + params.toString())).text();
      // the document's own <style> is the page's /static/diagnostic.css: left out (the
      // console's CSP refuses inline styles, even in a parsed document)
      const doc = new DOMParser().parseFromString(
        html.replace(/<style>[\s\S]*?<\/style>/, ""), "text/html");
      const sections = Array.from(doc.body.querySelectorAll("section.page"));
      $("diag-report").replaceChildren(...sections.map((s) => document.importNode(s, true)));
      if (downloadUrl) URL.revokeObjectURL(downloadUrl);
      downloadUrl = URL.createObjectURL(new Blob([html], { type: "text/html" }));
      $("d-download").href = downloadUrl;
      $("d-download").download = "diagnostic-" + (params.get("commune") ||
        params.get("jurisdiction")) + ".html";
      $("d-download").hidden = false;
      document.title = doc.title;
      status("", false);
    } catch (e) {
      status("Diagnostic indisponible : " + e.message, true);
    }
  }

  async function init() {
    if (!token) {
      status("Connectez-vous d'abord à la console (page d'accueil).", true);
      return;
    }
    try {
      const filters = await (await api("/api/refdata/filters")).json();
      for (const c of filters.communes) option($("d-commune"), c.insee, c.name + " (" + c.insee + ")");
      for (const j of filters.jurisdictions) option($("d-jurisdiction"), j.id, j.name);
    } catch (e) {
      status("Listes indisponibles : " + e.message, true);
      return;
    }
    const given = new URLSearchParams(location.search);
    if (given.get("commune")) $("d-commune").value = given.get("commune");
    if (given.get("jurisdiction")) $("d-jurisdiction").value = given.get("jurisdiction");
    if (given.get("weeks")) $("d-weeks").value = given.get("weeks");
    $("d-commune").addEventListener("change", () => { if ($("d-commune").value) $("d-jurisdiction").value = ""; });
    $("d-jurisdiction").addEventListener("change", () => { if ($("d-jurisdiction").value) $("d-commune").value = ""; });
    $("diag-form").addEventListener("submit", (event) => { event.preventDefault(); show(query()); });
    $("d-print").addEventListener("click", () => window.print());
    // the territory of the address, as given (an unknown code gets the server's reason)
    const first = new URLSearchParams();
    for (const name of ["commune", "jurisdiction", "weeks"]) {
      if (given.get(name)) first.set(name, given.get(name));
    }
    if (first.has("commune") || first.has("jurisdiction")) show(first);
  }

  init();
})();
