/* Helpers shared by the pages with a side panel (planner, analysis, coverage, border):
 * the status line, form values, HTML escaping, requests that count what is in flight
 * (state.busy), carry the session's CSRF token on writes and read the answer's ETag,
 * refusals in the page language, legends, property tables and numbers as people read
 * them. */
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

  /* GET url, or send body (null for none) as JSON, as GeoJSON for a Feature: with POST
   * unless options.method says otherwise. Writes carry the CSRF token; options.headers
   * are added (If-Match). Answers {ok, status, data, etag}, data null when not JSON. */
  async function call(url, body, options) {
    const {method = body == null ? "GET" : "POST", headers = {}} = options || {};
    const request = {method, credentials: "same-origin", headers: {}};
    if (method !== "GET" && method !== "HEAD") request.headers["X-CSRF-Token"] = config.csrf;
    if (body != null) {
      request.headers["Content-Type"] = body.type === "Feature" ? "application/geo+json"
        : "application/json";
      request.body = JSON.stringify(body);
    }
    Object.assign(request.headers, headers);
    state.busy += 1;
    try {
      const response = await fetch(url, request);
      let data = null;
      try { data = await response.json(); } catch { data = null; }
      return {ok: response.ok, status: response.status, data, etag: response.headers.get("ETag")};
    } finally {
      state.busy -= 1;
    }
  }

  /* A refused request as a person reads it: "Not done (400): why". Why is the page's
   * own text for the status where it has them (t.status_400 ... t.status_other; the
   * English page adds the server's words), else the server's reason ({error} or
   * {message}, with the problems it lists), else the HTTP status. */
  function errorText(result) {
    const data = result.data || {};
    let reason = data.error || data.message || "";
    if (Array.isArray(data.problems) && data.problems.length) {
      reason = (reason || "HTTP " + result.status) + t.colon +
        data.problems.map(p => p.reason || JSON.stringify(p)).join("; ");
    }
    let said = reason || "HTTP " + result.status;
    if (t.status_other) {
      said = (t["status_" + result.status] || t.status_other) +
        (config.lang === "en" && reason ? " (" + reason + ")" : "");
    }
    return t.refused + " (" + result.status + ")" + t.colon + said;
  }

  function refused(result) {
    message(errorText(result), "error");
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

  return {message, value, esc, call, errorText, refused, legend, rows, fixed, pValue};
}
