// The console's "Partenaires" page (operators only; the server refuses anyone else).
(function () {
  "use strict";
  const TOKEN_KEY = "vigie.token";
  const KINDS = {
    police_nationale: "Police nationale", gendarmerie: "Gendarmerie", police_municipale: "Police municipale",
    transport: "Transport", bailleur_social: "Bailleur social", education: "Éducation",
    securite_privee: "Sécurité privée", collectivite: "Collectivité",
  };
  const $ = (id) => document.getElementById(id);
  const token = sessionStorage.getItem(TOKEN_KEY);
  const list = (text) => text.split(/[,\s]+/).map((v) => v.trim()).filter(Boolean);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  async function api(path, options) {
    const response = await fetch(path, {
      ...(options || {}),
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.message || "erreur " + response.status);
    return body;
  }

  function perimeterText(p) {
    const parts = [];
    if (p.communes.length) parts.push(p.communes.length + " commune(s)");
    if (p.jurisdictions.length) parts.push(p.jurisdictions.join(", "));
    if (p.categories.length) parts.push("catégories : " + p.categories.join(", "));
    return parts.join(" · ");
  }

  function showSecrets(result) {
    const box = $("p-secrets");
    const lines = [];
    if (result.console_token) lines.push("Jeton console : " + result.console_token);
    if (result.webhook_secret) lines.push("Secret webhook : " + result.webhook_secret);
    box.textContent = lines.length
      ? "À transmettre au partenaire maintenant (affiché une seule fois) — " + lines.join(" · ")
      : "";
    box.hidden = !lines.length;
  }

  async function refresh() {
    const data = await api("/api/partners");
    $("p-rows").replaceChildren(...data.items.map((p) => el("tr", {},
      el("td", {}, p.org), el("td", {}, p.name), el("td", {}, KINDS[p.kind] || p.kind),
      el("td", {}, perimeterText(p.perimeter)), el("td", {}, String(p.version)),
      el("td", {}, p.active ? "actif" : "désactivé"),
      el("td", {},
        el("button", { type: "button", onclick: () => edit(p) }, "Modifier"),
        el("button", { type: "button", onclick: () => change(p, { active: !p.active }) },
          p.active ? "Désactiver" : "Réactiver"),
        el("button", { type: "button", onclick: () => rotate(p) }, "Nouveau jeton")))));
    $("p-status").textContent = data.items.length + " partenaire(s)";
  }

  function edit(p) {
    $("p-form-title").textContent = "Modifier " + p.org;
    $("p-org").value = p.org; $("p-org").readOnly = true;
    $("p-version").value = String(p.version);
    $("p-name").value = p.name; $("p-kind").value = p.kind;
    $("p-communes").value = p.perimeter.communes.join(", ");
    $("p-jurisdictions").value = p.perimeter.jurisdictions.join(", ");
    $("p-categories").value = p.perimeter.categories.join(", ");
    $("p-webhook").value = p.contact.webhook_url; $("p-email").value = p.contact.email;
    $("p-subscribe").value = p.subscriptions.length ? p.subscriptions[0].kinds.join(",") : "";
    $("p-cancel").hidden = false;
  }

  function resetForm() {
    $("p-form").reset(); $("p-org").readOnly = false; $("p-version").value = "";
    $("p-form-title").textContent = "Ajouter un partenaire"; $("p-cancel").hidden = true;
  }

  async function change(p, fields) {
    try {
      await api("/api/partners/" + encodeURIComponent(p.org), {
        method: "PATCH", body: JSON.stringify({ ...fields, version: p.version }),
      });
      await refresh();
    } catch (err) { $("p-error").textContent = err.message; }
  }

  async function rotate(p) {
    try {
      showSecrets(await api("/api/partners/" + encodeURIComponent(p.org) + "/secrets", {
        method: "POST", body: JSON.stringify({ token: true }),
      }));
      await refresh();
    } catch (err) { $("p-error").textContent = err.message; }
  }

  async function submit(e) {
    e.preventDefault();
    $("p-error").textContent = "";
    const kinds = list($("p-subscribe").value);
    const entry = {
      name: $("p-name").value.trim(), kind: $("p-kind").value,
      perimeter: { communes: list($("p-communes").value), jurisdictions: list($("p-jurisdictions").value),
        categories: list($("p-categories").value) },
      contact: { webhook_url: $("p-webhook").value.trim(), email: $("p-email").value.trim() },
      subscriptions: kinds.length ? [{ kinds }] : [],
    };
    try {
      if ($("p-version").value) {
        await api("/api/partners/" + encodeURIComponent($("p-org").value), {
          method: "PATCH", body: JSON.stringify({ ...entry, version: Number($("p-version").value) }),
        });
        showSecrets({});
      } else {
        showSecrets(await api("/api/partners", {
          method: "POST", body: JSON.stringify({ org: $("p-org").value.trim(), ...entry }),
        }));
      }
      resetForm();
      await refresh();
    } catch (err) { $("p-error").textContent = err.message; }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    for (const [value, label] of Object.entries(KINDS)) $("p-kind").append(el("option", { value }, label));
    $("p-form").addEventListener("submit", submit);
    $("p-cancel").addEventListener("click", resetForm);
    if (!token) { $("p-status").textContent = "Connectez-vous d'abord depuis la salle opérationnelle."; return; }
    try { await refresh(); } catch (err) { $("p-status").textContent = err.message; }
  });
})();
