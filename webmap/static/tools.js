/* Helpers shared by the tool pages (analysis, coverage, border): the status line, form
 * values, HTML escaping, requests that count what is in flight (state.busy) and carry
 * the session's CSRF token on writes, refusals, legends and property tables. */
/* exported safegridTools */
function safegridTools(config, state) {
  "use strict";
  const t = config.text;

  function message(text, kind) {
    const box = document.getElementById("sg-message");
    box.textContent = text;
    box.className = kind || "";
  }

  function value(id) {
    return document.getElementById(id).value.trim();
  }

  /* text as HTML: safe between tags and inside quoted attributes */
  function esc(text) {
    return (text == null ? "" : String(text)).replace(/[&<>"']/g, c => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  }

  /* GET url, or POST body as JSON (GeoJSON for a Feature); {ok, status, data}. */
  async function call(url, body) {
    state.busy += 1;
    try {
      const options = {credentials: "same-origin"};
      if (body !== undefined) {
        options.method = "POST";
        options.headers = {"Content-Type": body.type === "Feature" ? "application/geo+json"
          : "application/json", "X-CSRF-Token": config.csrf};
        options.body = JSON.stringify(body);
      }
      const response = await fetch(url, options);
      let data = null;
      try { data = await response.json(); } catch (e) { data = null; }
      return {ok: response.ok, status: response.status, data};
    } finally {
      state.busy -= 1;
    }
  }

  function refused(result) {
    message(t.refused + " (" + result.status + "): " + ((result.data || {}).error || ""),
            "error");
  }

  function legend(entries) {
    const box = document.getElementById("sg-legend");
    box.innerHTML = "";
    for (const [label, colour] of entries) {
      const row = document.createElement("div");
      const swatch = document.createElement("span");
      swatch.className = "sg-swatch";
      swatch.style.background = colour;
      row.append(swatch, document.createTextNode(" " + label));
      box.append(row);
    }
  }

  /* The scalar properties of p (but those in skip) as a two-column table. */
  function table(p, skip) {
    return "<table>" + Object.entries(p).filter(([k, v]) => !(skip || []).includes(k) &&
      v !== null && typeof v !== "object").map(([k, v]) =>
      "<tr><th>" + esc(t[k] || k) + "</th><td>" + esc(v) + "</td></tr>").join("") + "</table>";
  }

  return {message, value, esc, call, refused, legend, table};
}
