/* safegrid hot-spot analysis: run Gi*, KDE, counts or emerging hot spots from the
 * controls, draw the cells with a legend, reopen saved runs. Errors are shown in
 * #sg-message. */
/* exported safegridAnalysis */
function safegridAnalysis(map, config) {
  "use strict";
  const t = config.text;
  const CLASS_COLOURS = {
    hot_99: "#d7191c", hot_95: "#f46d43", hot_90: "#fdae61", not_significant: "#ffffbf",
    cold_90: "#abd9e9", cold_95: "#74add1", cold_99: "#2c7bb6",
  };
  const CATEGORY_COLOURS = {
    new_hot_spot: "#fcbba1", consecutive_hot_spot: "#fc9272", intensifying_hot_spot: "#de2d26",
    persistent_hot_spot: "#a50f15", diminishing_hot_spot: "#fb6a4a",
    sporadic_hot_spot: "#fee0d2", oscillating_hot_spot: "#ef3b2c",
    historical_hot_spot: "#cb181d",
    new_cold_spot: "#c6dbef", consecutive_cold_spot: "#9ecae1",
    intensifying_cold_spot: "#3182bd", persistent_cold_spot: "#08519c",
    diminishing_cold_spot: "#6baed6", sporadic_cold_spot: "#deebf7",
    oscillating_cold_spot: "#4292c6", historical_cold_spot: "#2171b5", no_pattern: "#f0f0f0",
  };
  const DENSITY = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"];
  const LEVELS = {1: "#1a9641", 2: "#a6d96a", 3: "#ffffbf", 4: "#fdae61", 5: "#d7191c"};
  const cells = L.featureGroup().addTo(map);
  const compared = L.featureGroup().addTo(map);
  const outline = drawOutline(config.outline);
  const state = {busy: 0, last: null};
  window.safegridAnalysisState = {map, cells, compared, outline, state};
  const {message, value, esc, call: get, refused, legend, rows, fixed, pValue} =
    safegridTools(config, state);
  const percent = v => fixed(100 * v, 1) + "%";
  /* What a cell's popup shows, in this order: [property, how to say its value]. */
  const FIELDS = [
    ["kind", v => t[v] || v], ["level", v => t.level_of.replace("{level}", v)],
    ["score", v => fixed(v, 1)],
    ["count", v => v + " " + t.unit_incidents], ["class", v => t[v] || v],
    ["z", v => fixed(v, 2)], ["p", pValue], ["p_fdr", pValue],
    ["density", v => Math.round(v) + " " + t.per_km2], ["category", v => t[v] || v],
    ["trend_z", v => fixed(v, 2)], ["trend_p", pValue],
    ["households", v => v + " " + t.unit_households],
    ["population", v => v + " " + t.unit_people],
    ["incidents_12m", v => v + " " + t.unit_incidents],
    ["rate_per_1000", v => fixed(v, 1) + " " + t.per_1000], ["hot_share", percent],
    ["key_areas", v => (v + " " + t.unit_areas).trim()],
    ["key_areas_per_km2", v => fixed(v, 1) + " " + t.per_km2_areas],
    ["coverage", percent],
  ];

  /* The jurisdiction (bold) and its communities (thin), above the cells and not in the
   * way of their popups; the map fitted to it. */
  function drawOutline(geojson) {
    const pane = map.createPane("sg-outline");
    pane.style.zIndex = 450;
    pane.style.pointerEvents = "none";
    const group = L.geoJSON(geojson, {
      pane: "sg-outline", interactive: false,
      style: f => f.properties.role === "outline"
        ? {color: "#5e3c99", weight: 3, fill: false}
        : {color: "#5e3c99", weight: 0.8, opacity: 0.7, fill: false},
    }).addTo(map);
    if (group.getLayers().length) {
      // room for the side panel when the map is wide enough to spare it
      const panel = document.getElementById("sg-panel").offsetWidth + 20;
      const room = panel < map.getSize().x / 2 ? panel : 0;
      map.fitBounds(group.getBounds(), {paddingBottomRight: [room, 0]});
    }
    return group;
  }

  /* The density or count classes with their bounds: what each colour stands for. */
  function scale(method, body) {
    const key = method === "kde" ? "density" : "count";
    const top = Math.max(1, ...body.features.map(f => f.properties[key] || 0));
    const step = top / DENSITY.length;
    const unit = method === "kde" ? t.per_km2 : t.unit_incidents;
    return [[method === "kde" ? t.legend_kde : t.legend_count, DENSITY.map((c, i) => [
      Math.round(i * step) + "–" + Math.round((i + 1) * step) + " " + unit +
        (i === 0 ? " (" + t.low + ")" : i === DENSITY.length - 1 ? " (" + t.high + ")" : ""),
      c])]];
  }

  function densityColour(v, top) {
    const i = Math.min(DENSITY.length - 1, Math.floor(DENSITY.length * v / (top || 1)));
    return DENSITY[i];
  }

  function levelName(level) {
    return t["level_" + level] || String(level);
  }

  /* A cell's or grid's figures in words, rounded, with their units. */
  function popup(p) {
    const list = p.name ? [[t.f_grid, p.name, p.code]] : [];
    for (const [k, say] of FIELDS) {
      if (p[k] != null) list.push([t["f_" + k], say(p[k])]);
    }
    for (const [k, v] of Object.entries(p.by_category || {})) {
      list.push(["· " + (t[k] || k), v + " " + t.unit_incidents]);
    }
    let html = rows(list);
    const series = Array.isArray(p.counts) ? p.counts : p.monthly;
    if (Array.isArray(series)) {
      const top = Math.max(1, ...series);
      const bars = series.map((c, i) => '<rect x="' + (i * 10) + '" y="' + (40 - 40 * c / top) +
        '" width="8" height="' + (40 * c / top) + '" fill="#de2d26"></rect>').join("");
      html += '<div class="sg-trend-title">' + esc(Array.isArray(p.counts) ? t.trend_steps
        : t.trend_monthly) + "</div>" + '<svg class="sg-trend" width="' + (series.length * 10) + '" height="40">' +
        bars + "</svg>";
    }
    return html;
  }

  function draw(body) {
    cells.clearLayers();
    compared.clearLayers();
    state.last = body;
    slider(body);
    const method = (body.parameters || {}).weights ? "safety"
      : (body.parameters || {}).method || (body.steps ? "emerging" : "gi");
    const top = Math.max(0, ...body.features.map(f => f.properties.density || 0));
    const topCount = Math.max(1, ...body.features.map(f => f.properties.count));
    L.geoJSON(body, {
      style: f => {
        const p = f.properties;
        const colour = (method === "gi" ? CLASS_COLOURS[p.class]
          : method === "kde" ? densityColour(p.density, top)
          : method === "count" ? densityColour(p.count, topCount)
          : method === "safety" ? LEVELS[p.level]
          : CATEGORY_COLOURS[p.category]) || "#cccccc";  // grey: a class without a colour
        return {color: colour, weight: 0.5, fillColor: colour, fillOpacity: 0.65};
      },
      onEachFeature: (f, layer) => layer.bindPopup(popup(f.properties)),
    }).addTo(cells);
    if (method === "safety") {
      legend([[t.legend_safety, Object.entries(LEVELS).map(([k, c]) => [levelName(k), c])]]);
      message(t.done + t.colon + body.features.length + " " + t.grids, "ok");
      return;
    }
    if (method === "gi") {
      legend([[t.legend_gi, Object.entries(CLASS_COLOURS).map(([k, c]) => [t[k] || k, c])]]);
    } else if (method === "emerging") {
      const seen = new Set(body.features.map(f => f.properties.category));
      legend([[t.legend_emerging, Object.entries(CATEGORY_COLOURS).filter(([k]) => seen.has(k))
        .map(([k, c]) => [t[k] || k, c])]]);
    } else {
      legend(scale(method, body));
    }
    const p = body.parameters || {};
    const incidents = p.incidents != null ? p.incidents : p.incidents_in_cells;  // batch runs
    message(t.done + t.colon + body.features.length + " " + t.cells + t.comma + t.cell + " " +
            p.cell + " m" + (p.cell_chosen ? " (" + t.chosen + ")" : "") +
            (incidents != null ? t.comma + incidents + " " + t.incidents : ""), "ok");
  }

  async function run() {
    const method = value("sg-method");
    if (!config.month && method !== "safety") {  // no incident in any period: nothing to find
      message(t.no_data, "error");
      return;
    }
    const params = new URLSearchParams({jurisdiction: value("sg-jurisdiction")});
    for (const [name, id] of [["cell", "sg-cell"], ["from", "sg-from"], ["to", "sg-to"],
                              ["category", "sg-category"]]) {
      if (value(id)) params.set(name, value(id));
    }
    let url = "/api/hotspots";
    if (method === "safety") {
      url = "/api/safety-index";
      for (const name of ["cell", "from", "category"]) params.delete(name);
    } else if (method === "emerging") {
      url += "/emerging";
      params.set("step", value("sg-step"));
    } else {
      params.set("method", method);
    }
    message(t.running);
    const result = await get(url + "?" + params.toString());
    if (!result.ok) {
      refused(result);
      return;
    }
    draw(result.data);
    if (method !== "safety") loadRuns();
  }

  async function loadRuns() {
    const result = await get("/api/hotspots/runs?jurisdiction=" +
                             encodeURIComponent(value("sg-jurisdiction")));
    if (!result.ok) return;
    for (const [id, label] of [["sg-runs", t.saved_runs], ["sg-compare", t.compare_with]]) {
      fill(document.getElementById(id), label, result.data.runs);
    }
  }

  function fill(select, label, runs) {
    const chosen = select.value;
    select.innerHTML = "<option value=''>" + esc(label) + "</option>";
    for (const r of runs) {
      const option = document.createElement("option");
      option.value = r.id;
      option.textContent = "#" + r.id + " " + (t[r.kind] || r.kind) + " · " + r.created_at.slice(0, 16)
        .replace("T", " ") + " · " + r.created_by;
      select.append(option);
    }
    select.value = chosen;  // a refresh keeps what the analyst picked
  }

  async function reopen() {
    const id = value("sg-runs");
    if (!id) return;
    const result = await get("/api/hotspots/runs/" + id);
    if (!result.ok) { refused(result); return; }
    draw(result.data);
  }

  function isHot(p) {
    return String(p.class || p.category || "").startsWith("hot") ||
      String(p.category || "").includes("_hot_");
  }

  async function compare() {
    compared.clearLayers();
    const id = value("sg-compare");
    if (!id || !state.last) return;
    const result = await get("/api/hotspots/runs/" + id);
    if (!result.ok) { refused(result); return; }
    const key = f => f.properties.row + ":" + f.properties.col;
    const mine = new Set(state.last.features.filter(f => isHot(f.properties)).map(key));
    const theirs = result.data.features.filter(f => isHot(f.properties));
    const both = theirs.filter(f => mine.has(key(f))).length;
    L.geoJSON({type: "FeatureCollection", features: theirs}, {
      style: {color: "#000", weight: 2, dashArray: "4 3", fill: false}, interactive: false,
    }).addTo(compared);
    message(t.compared + t.colon + mine.size + " / " + theirs.length + " " + t.hot_cells + t.comma +
            both + " " + t.in_both, "ok");
  }

  function showStep() {
    const body = state.last;
    if (!body || !body.steps) return;
    const step = Number(value("sg-slider"));
    document.getElementById("sg-step-label").textContent = stepLabel(body, step);
    const top = Math.max(1, ...body.features.map(f => f.properties.counts[step]));
    cells.eachLayer(group => group.eachLayer(layer => {
      const c = layer.feature.properties.counts[step];
      const colour = c ? densityColour(c, top) : "#f7f7f7";
      layer.setStyle({fillColor: colour, color: colour});
    }));
  }

  // "2025-12-02 至 2026-01-01": a step's first and last day (its end is exclusive)
  function stepLabel(body, step) {
    const edges = body.step_edges;
    if (!edges) return body.steps[step].slice(0, 10);  // runs saved before step edges
    const from = edges[step].from.slice(0, 10);
    let last = edges[step].to.slice(0, 10);
    if (/T00:00:00(\.0+)?([+-]|Z)/.test(edges[step].to)) {  // at midnight
      const [y, m, d] = last.split("-").map(Number);
      last = new Date(Date.UTC(y, m - 1, d - 1)).toISOString().slice(0, 10);
    }
    const partial = step === 0 && (body.parameters || {}).first_step_partial;
    return from + " " + t.step_to + " " + last + (partial ? " (" + t.partial_step + ")" : "");
  }

  function slider(body) {
    const box = document.getElementById("sg-time");
    box.style.display = body.steps ? "" : "none";
    if (!body.steps) return;
    const input = document.getElementById("sg-slider");
    input.max = body.steps.length - 1;
    input.value = body.steps.length - 1;
    document.getElementById("sg-step-label").textContent = t.categories_all;
  }

  document.getElementById("sg-run").addEventListener("click", run);
  document.getElementById("sg-compare").addEventListener("change", compare);
  document.getElementById("sg-slider").addEventListener("input", showStep);
  document.getElementById("sg-runs").addEventListener("change", reopen);
  document.getElementById("sg-method").addEventListener("change", () => {
    document.getElementById("sg-step-row").style.display =
      value("sg-method") === "emerging" ? "" : "none";
  });
  document.getElementById("sg-jurisdiction").addEventListener("change", () => {
    const params = new URLSearchParams(window.location.search);
    params.set("jurisdiction", value("sg-jurisdiction"));
    window.location.search = params.toString();
  });
  if (!config.month) message(t.no_data, "error");
  loadRuns();
}
