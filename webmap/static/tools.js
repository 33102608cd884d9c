/* Helpers shared by the tool pages (analysis, coverage, border): the status line, form
 * values, HTML escaping, requests that count what is in flight (state.busy) and carry
 * the session's CSRF token on writes, refusals, legends, property tables and numbers as
 * people read them. */
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
    message(t.refused + " (" + result.status + ")" + t.colon + ((result.data || {}).error || ""),
            "error");
  }

  /* The key to the map: sections of [label, colour, dashed?] under their titles, each
   * section [title, entries]. */
  function legend(sections) {
    const box = document.getElementById("sg-legend");
    box.innerHTML = "";
    for (const [title, entries] of sections) {
      const head = document.createElement("div");
      head.className = "sg-legend-title";
      head.textContent = title;
      box.append(head);
      for (const [label, colour, dashed] of entries) {
        const row = document.createElement("div");
        const swatch = document.createElement("span");
        swatch.className = "sg-swatch";
        swatch.style.background = colour;
        if (dashed) swatch.style.border = "1px dashed #333";
        row.append(swatch, document.createTextNode(" " + label));
        box.append(row);
      }
    }
  }

  /* Rows [label, value, secondary] as a two-column table; empty values are left out,
   * the secondary text (a code) is shown small after the value. */
  function rows(list) {
    return "<table>" + list.filter(r => r && r[1] != null && r[1] !== "").map(r =>
      '<tr><th style="white-space:nowrap;text-align:left;padding-right:8px">' + esc(r[0]) +
      "</th><td>" + esc(r[1]) + (r[2] ? ' <small class="sg-code" style="color:#666">' +
      esc(r[2]) + "</small>" : "") + "</td></tr>").join("") + "</table>";
  }

  /* A number with `digits` decimals, "–" when absent. */
  function fixed(v, digits) {
    return v == null || v === "" ? "–" : Number(v).toFixed(digits);
  }

  /* A p value as people read it: "< 0.001" or three decimals. */
  function pValue(p) {
    return p == null ? "–" : p < 0.001 ? "< 0.001" : Number(p).toFixed(3);
  }

  return {message, value, esc, call, refused, legend, rows, fixed, pValue};
}
