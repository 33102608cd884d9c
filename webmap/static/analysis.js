/* safegrid hot-spot analysis: run Gi*, KDE, counts, emerging hot spots, near repeat
 * (Knox table and risk zones), the data clock (weekday x hour, of the jurisdiction or a
 * grid clicked on the map) or the risk terrain from the controls, draw the cells with a
 * legend, show tables in the results panel (Esc closes it), reopen saved runs. The hours
 * and weekdays filters go with every run that takes them. Errors are shown in
 * #sg-message. The risk levels of places (key areas and grids, levels 1-4 with their
 * reasons); a saved emerging, near-repeat or risk-levels run kept as a standing watch
 * (police and admins); the warnings of the jurisdiction (warnings.js). */
/* exported safegridAnalysis */
/* global safegridWarnings */
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
  const RRS_COLOURS = ["#ffffcc", "#fed976", "#fd8d3c", "#bd0026"];
  // risk levels of places 1-4: ColorBrewer YlOrRd, 4 classes (colour-blind safe)
  const PLACE_COLOURS = {1: "#ffffb2", 2: "#fecc5c", 3: "#fd8d3c", 4: "#e31a1c"};
  // the kinds of saved run a standing watch can repeat (layers.warnings.WATCH_KINDS)
  const WATCHABLE = new Set(config.watchKinds || []);
  const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  // the server's parameter names, as the page's labels say them
  const PARAMS = new Set(["hours", "weekdays", "cell", "space_bands", "time_bands",
                          "permutations", "category", "from", "to"]);
  const GRID_STYLE = {color: "#31a354", weight: 1, fillColor: "#31a354", fillOpacity: 0.04};
  const PICKED_STYLE = {color: "#006d2c", weight: 4, fillColor: "#31a354", fillOpacity: 0.2};
  const cells = L.featureGroup().addTo(map);
  const compared = L.featureGroup().addTo(map);
  const grids = L.featureGroup();  // the grids to pick for the data clock
  const outline = drawOutline(config.outline);
  const state = {busy: 0, last: null, clock: null, gridsLoaded: false, popup: false,
                 runs: [], watch: null, watched: new Map()};
  window.safegridAnalysisState = {map, cells, compared, grids, outline, state};
  const {message, value, esc, call: get, refused: refusedRaw, legend, rows, fixed, pValue} =
    safegridTools(config, state);
  const results = document.getElementById("sg-results");
  const resultsBody = document.getElementById("sg-results-body");
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

  function clear(body) {
    state.watch = null;
    showWatch();
    cells.clearLayers();
    compared.clearLayers();
    grids.remove();
    closeResults();
    state.last = body;
  }

  function draw(body) {
    clear(body);
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

  /* The request of a run of `method`: [url, parameters]. */
  function request(method) {
    const params = new URLSearchParams({jurisdiction: value("sg-jurisdiction")});
    for (const [name, id] of [["cell", "sg-cell"], ["from", "sg-from"], ["to", "sg-to"],
                              ["category", "sg-category"], ["hours", "sg-hours"],
                              ["weekdays", "sg-weekdays"]]) {
      if (value(id)) params.set(name, value(id));
    }
    if (method === "safety") {  // the safety index takes no hours and weekdays
      params.delete("hours");
      params.delete("weekdays");
    }
    if (method === "safety") {
      for (const name of ["cell", "from", "category"]) params.delete(name);
      return ["/api/safety-index", params];
    }
    if (method === "terrain") return ["/api/risk/terrain", params];
    if (method === "places") {  // a period; no cell, category, hours or weekdays
      for (const name of ["cell", "category", "hours", "weekdays"]) params.delete(name);
      return ["/api/risk/places", params];
    }
    if (method === "emerging") {
      params.set("step", value("sg-step"));
      return ["/api/hotspots/emerging", params];
    }
    if (method === "near_repeat") {
      params.delete("cell");
      for (const [name, id] of [["space_bands", "sg-space-bands"],
                                ["time_bands", "sg-time-bands"],
                                ["permutations", "sg-permutations"]]) {
        if (value(id)) params.set(name, value(id));
      }
      return ["/api/hotspots/near-repeat", params];
    }
    if (method === "clock") {
      params.delete("cell");
      if (value("sg-clock-grid")) params.set("grid", value("sg-clock-grid"));
      return ["/api/hotspots/clock", params];
    }
    params.set("method", method);
    return ["/api/hotspots", params];
  }

  async function run() {
    const method = value("sg-method");
    if (!config.month && method !== "safety" && method !== "places") {  // no incident in any period: nothing to find
      message(t.no_data, "error");
      return;
    }
    const [url, params] = request(method);
    message(t.running);
    const result = await get(url + "?" + params.toString());
    if (!result.ok) {
      refused(result);
      return;
    }
    if (method === "clock") {
      drawClock(result.data);
      await loadGrids();
      markGrid();
      return;
    }
    show(result.data);
    const kind = method === "places" ? "risk_places" : method;
    watchable(kind, result.data.run || result.data.run_id);
    if (method === "safety" && (value("sg-hours") || value("sg-weekdays"))) {
      const box = document.getElementById("sg-message");
      box.textContent += t.comma + t.filters_ignored;
    }
    if (method !== "safety") loadRuns();
  }

  /* A refusal in the page's language: the server's reason in English stays as a code
   * (the Chinese page names the parameter it is about in Chinese). */
  function refused(result) {
    refusedRaw(result);
    if (config.lang === "en") return;
    const data = result.data || {};
    const reason = data.error || data.message || "";
    const name = (reason.match(/^[a-z_]+/) || [""])[0];
    if (!reason || !PARAMS.has(name)) return;
    const box = document.getElementById("sg-message");
    box.textContent = t.refused + " (" + result.status + ")" + t.colon +
      t.bad_param.replace("{name}", t[name]) + " ";
    const code = document.createElement("small");
    code.className = "sg-code";
    code.textContent = reason;
    box.append(code);
  }

  /* A saved or new answer, drawn as its kind asks. */
  function show(body) {
    if (body.knox) {
      drawNearRepeat(body);
    } else if (body.levels && (body.grids || body.key_areas)) {
      drawPlaces(body);
    } else if (body.factors) {
      drawTerrain(body);
    } else {
      draw(body);
    }
  }

  function openResults(title, html) {
    document.getElementById("sg-results-title").textContent = title;
    resultsBody.innerHTML = html;
    results.hidden = false;
  }

  function closeResults() {
    if (results.hidden) return false;
    results.hidden = true;
    return true;
  }

  async function loadRuns() {
    const result = await get("/api/hotspots/runs?jurisdiction=" +
                             encodeURIComponent(value("sg-jurisdiction")));
    if (!result.ok) return;
    // evaluations (PAI of a period against the next) have no cells to draw: API only
    const drawable = result.data.runs.filter(r => r.kind !== "evaluate");
    state.runs = drawable;
    for (const [id, label] of [["sg-runs", t.saved_runs], ["sg-compare", t.compare_with]]) {
      fill(document.getElementById(id), label, drawable);
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
    watchable(null, null);  // not the run on the map until this one is drawn
    const result = await get("/api/hotspots/runs/" + id);
    if (!result.ok) { refused(result); return; }
    show(result.data);
    const run = state.runs.find(r => String(r.id) === id);
    if (run) watchable(run.kind, run.id);
  }

  /* The watch button for the run on the map, when its kind can be watched. */
  function watchable(kind, id) {
    state.watch = config.canWatch && id && WATCHABLE.has(kind) ? {kind, id: Number(id)} : null;
    showWatch();
  }

  function showWatch() {
    const button = document.getElementById("sg-watch");
    const w = state.watch;
    button.hidden = !w;
    if (!w) return;
    const watch = state.watched.get(w.id);
    button.disabled = watch != null;
    button.textContent = watch != null ? t.watching : t.watch;
    button.title = watch != null ? t.already_watched.replace("{id}", watch) : t.watch_title;
  }

  /* A refused watch: on the Chinese page why in Chinese, the server's reason as a code. */
  function watchRefused(result) {
    const words = t["watch_" + result.status];
    const data = result.data || {};
    const reason = data.error || data.message || "";
    if (config.lang === "en" || !words) {
      refusedRaw(result);
      return;
    }
    const box = document.getElementById("sg-message");
    box.textContent = t.refused + " (" + result.status + ")" + t.colon + words + " ";
    box.className = "error";
    const code = document.createElement("small");
    code.className = "sg-code";
    code.textContent = reason;
    box.append(code);
  }

  async function loadWatches() {
    if (!config.canWatch) return;
    const result = await get("/api/warnings/watches");
    if (!result.ok) return;
    state.watched = new Map(result.data.watches.map(w => [w.run, w.id]));
    showWatch();
  }

  async function keepWatch() {
    const w = state.watch;
    if (!w) return;
    const result = await get("/api/warnings/watches", {run: w.id});
    if (!result.ok) { watchRefused(result); return; }
    state.watched.set(w.id, result.data.id);
    showWatch();
    message(t.watched.replace("{id}", result.data.id), "ok");
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

  /* Near repeat: the risk zones on the map, the Knox table and the classes in the panel. */
  function drawNearRepeat(body) {
    clear(body);
    slider({});
    L.geoJSON(body, {
      style: {color: "#d94801", weight: 1.5, fillColor: "#fd8d3c", fillOpacity: 0.35},
      onEachFeature: (f, layer) => layer.bindPopup(zonePopup(f.properties)),
    }).addTo(cells);
    legend([[t.legend_zone, [[t.zone_title, "#fd8d3c"]]]]);
    const k = body.knox;
    const c = body.classification;
    const classes = "<p id='sg-nr-classes'>" + esc(t.classes_title.replace("{m}", c.space_m)
      .replace("{d}", c.days)) + t.colon + ["originator", "near_repeat", "isolated"].map(
      name => "<span class='sg-nr-class' data-class='" + name + "'>" +
        esc(t[name === "near_repeat" ? "near_repeat_class" : name]) + " <b>" +
        c.counts[name] + "</b></span>").join(" · ") + "</p>";
    const withheld = body.zones_withheld
      ? "<p id='sg-zones-withheld' class='sg-note'>" + esc(t.zones_withheld) + "</p>" : "";
    openResults(t.knox_title, knoxTable(k) + knoxLegend() + classes + withheld +
                zoneList(body.features));
    for (const button of resultsBody.querySelectorAll("button.sg-zone")) {
      button.addEventListener("click", () => openZone(Number(button.dataset.zone)));
    }
    const p = body.parameters || {};
    message(t.done + t.colon + p.incidents + " " + t.incidents +
            (body.zones_withheld ? "" : t.comma + body.features.length + " " + t.zones), "ok");
  }

  /* The zones as buttons, latest end first: each opens its zone on the map. */
  function zoneList(features) {
    if (!features.length) return "";
    return "<h4>" + esc(t.zone_list) + "</h4><ol id='sg-zone-list'>" + features.map(
      (f, i) => "<li><button type='button' class='sg-zone' data-zone='" + i + "'>" +
        esc(t.zone_until + " " + String(f.properties.until).slice(0, 16).replace("T", " ") +
            " · " + f.properties.incidents + " " + t.unit_incidents) + "</button></li>")
      .join("") + "</ol>";
  }

  function openZone(index) {
    const layers = cells.getLayers()[0].getLayers();
    const layer = layers[index];
    if (!layer) return;
    map.fitBounds(layer.getBounds(), {maxZoom: Math.max(map.getZoom(), 15)});
    layer.openPopup(layer.getBounds().getCenter());
  }

  function zonePopup(p) {
    return "<b>" + esc(t.zone_title) + "</b>" + rows([
      [t.zone_until, String(p.until).slice(0, 16).replace("T", " ")],
      [t.zone_incidents, p.incidents + " " + t.unit_incidents]]);
  }

  // "0–100 米", "> 300 米": a band as the API labels it, with its unit
  function band(label, unit) {
    return label.replace("-", "–").replace(">", "> ") + " " + unit;
  }

  function knoxClass(ratio, p) {
    if (ratio == null) return "sg-k-none";
    if (ratio <= 1) return "sg-k-cool";
    // pseudo p-values of n permutations are at least 1 / (n + 1): 0.01 with 99
    if (p != null && p <= 0.01) return "sg-k-p01";
    if (p != null && p <= 0.05) return "sg-k-p05";
    return "sg-k-warm";
  }

  /* The Knox table as the Near Repeat Calculator shows it: space bands down, time
   * bands across, the ratio with the observed pairs, coloured by significance. */
  function knoxTable(k) {
    const head = "<tr><th scope='col'>" + esc(t.knox_corner) + "</th>" + k.time_bands.map(
      b => "<th scope='col'>" + esc(band(b, t.days)) + "</th>").join("") + "</tr>";
    const body = k.space_bands.map((s, i) => "<tr><th scope='row'>" + esc(band(s, t.metres)) +
      "</th>" + k.time_bands.map((_b, j) => {
        const ratio = k.knox_ratio[i][j];
        const p = k.p_value[i][j];
        const title = t.knox_ratio + " " + fixed(ratio, 2) + t.comma + t.observed + " " +
          k.observed[i][j] + t.comma + t.expected + " " + fixed(k.expected[i][j], 1) +
          t.comma + "p " + pValue(p);
        return "<td class='" + knoxClass(ratio, p) + "' title='" + esc(title) + "'>" +
          (ratio == null ? "—" : fixed(ratio, 2) + " (" + k.observed[i][j] + ")") + "</td>";
      }).join("") + "</tr>").join("");
    return "<table id='sg-knox' class='sg-grid-table'>" + head + body + "</table>" +
      "<p class='sg-note'>" + esc(t.knox_note) + "</p>";
  }

  function knoxLegend() {
    return "<div id='sg-knox-legend'>" + ["p01", "p05", "warm", "cool", "none"].map(
      key => "<div><span class='sg-swatch sg-k-" + key + "'></span> " + esc(t["knox_" + key]) +
        "</div>").join("") + "</div>";
  }

  /* The data clock: weekdays down, hours across, shaded by count; and one grid's. */
  function drawClock(body) {
    clear(null);
    slider({});
    legend([]);
    state.clock = body;
    let html = clockTable(body, "sg-clock");
    if (body.grid) {
      html += "<h4 id='sg-clock-grid-title'>" + esc(t.clock_grid_title.replace(
        "{code}", body.grid.code)) + "</h4>" + clockTable(body.grid, "sg-clock-grid-table");
    }
    openResults(t.clock_title, html);
    message(t.done + t.colon + body.total + " " + t.incidents +
            (body.grid ? t.comma + t.clock_grid + " " + body.grid.code + t.colon +
             body.grid.total + " " + t.incidents : ""), "ok");
  }

  function clockTable(clock, id) {
    const top = Math.max(1, ...clock.counts.flat());
    const head = "<tr><th></th>" + clock.counts[0].map((_c, h) => "<th scope='col'>" + h +
      "</th>").join("") + "<th scope='col'>" + esc(t.total) + "</th></tr>";
    const body = clock.counts.map((row, d) => "<tr><th scope='row'>" + esc(t[WEEKDAYS[d]]) +
      "</th>" + row.map((c, h) => {
        const share = c / top;
        const style = "background:rgba(189,0,38," + (0.08 + 0.87 * share).toFixed(2) + ")" +
          (share > 0.5 ? ";color:#fff" : "");
        const title = t.clock_of.replace("{day}", t[WEEKDAYS[d]]).replace("{hour}", h) +
          t.colon + c + " " + t.unit_incidents;
        return "<td style='" + (c ? style : "") + "' title='" + esc(title) + "' data-count='" +
          c + "'>" + (c || "") + "</td>";
      }).join("") + "<td class='sg-total'>" + clock.by_weekday[d] + "</td></tr>").join("");
    return "<table id='" + id + "' class='sg-grid-table sg-clock'>" + head + body + "</table>";
  }

  /* The grids under the jurisdiction, to click for their clock (loaded once). */
  async function loadGrids() {
    grids.addTo(map);
    if (state.gridsLoaded) return;
    state.gridsLoaded = true;
    const b = outline.getBounds();
    let url = "/collections/grids/items?limit=1000&bbox=" +
      [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(v => v.toFixed(6)).join(",");
    const found = [];
    while (url) {
      const result = await get(url);
      if (!result.ok) { state.gridsLoaded = false; return; }
      found.push(...result.data.features.filter(f =>
        String(f.properties.jurisdiction_code || "").startsWith(config.jurisdiction)));
      const next = (result.data.links || []).find(l => l.rel === "next");
      url = next ? next.href : null;
    }
    const select = document.getElementById("sg-clock-grid");
    for (const f of found.sort((a, b) => String(a.properties.code).localeCompare(b.properties.code))) {
      const option = document.createElement("option");
      option.value = f.id;
      option.textContent = (f.properties.name || "") + " (" + f.properties.code + ")";
      select.append(option);
    }
    L.geoJSON({type: "FeatureCollection", features: found}, {
      style: GRID_STYLE,
      onEachFeature: (f, layer) => {
        layer.bindTooltip(esc(f.properties.name || f.properties.code), {sticky: true});
        layer.on("click", () => {
          select.value = String(f.id);
          run();
        });
      },
    }).addTo(grids);
    markGrid();
  }

  /* The grid whose clock is shown, outlined bold. */
  function markGrid() {
    const picked = value("sg-clock-grid");
    grids.eachLayer(group => group.eachLayer(layer => layer.setStyle(
      String(layer.feature.id) === picked ? PICKED_STYLE : GRID_STYLE)));
  }

  /* The risk terrain: cells by relative risk score class, the factors and the check. */
  function drawTerrain(body) {
    clear(body);
    slider({});
    const scores = body.features.map(f => f.properties.rrs);
    const mean = scores.reduce((a, b) => a + b, 0) / Math.max(1, scores.length);
    const sd = Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) /
                         Math.max(1, scores.length));
    const breaks = [mean, mean + sd, mean + 2 * sd];
    const rank = v => breaks.filter(b => v >= b).length;
    L.geoJSON(body, {
      style: f => {
        const colour = RRS_COLOURS[rank(f.properties.rrs)];
        return {color: colour, weight: 0.5, fillColor: colour, fillOpacity: 0.7};
      },
      onEachFeature: (f, layer) => layer.bindPopup(rows([
        [t.f_rrs, fixed(f.properties.rrs, 2)],
        [t.f_count, f.properties.count != null ? f.properties.count + " " + t.unit_incidents
          : null]])),
    }).addTo(cells);
    const edges = ["", ...breaks.map(b => fixed(b, 2))];
    legend([[t.legend_rrs, RRS_COLOURS.map((c, i) => [(i === 0 ? "< " + edges[1]
      : i === 3 ? "≥ " + edges[3] : edges[i] + "–" + edges[i + 1]) + " (" + t["rrs_" + (i + 1)] +
      ")", c])]]);
    openResults(t.terrain, factorTable(body) + validationTable(body));
    const p = body.parameters || {};
    message(t.done + t.colon + body.features.length + " " + t.cells + t.comma + t.cell + " " +
            p.cell + " m" + t.comma + t.model + " " + (t[body.model.kind] || body.model.kind),
            "ok");
  }

  function factorTable(body) {
    if (!body.factors.length) return "<p class='sg-note'>" + esc(t.no_factors) + "</p>";
    const head = ["factor", "operationalisation", "distance", "relative_risk"].map(
      k => "<th scope='col'>" + esc(t[k]) + "</th>").join("") + "<th scope='col'>p</th>";
    return "<h4>" + esc(t.factors_title) + "</h4><table id='sg-factors' class='sg-grid-table'>" +
      "<tr>" + head + "</tr>" + body.factors.map(f => "<tr><td>" +
        esc(t[f.factor] || f.factor) + "</td><td>" +
        esc(t[f.operationalisation] || f.operationalisation) + "</td><td>" +
        Math.round(f.distance) + " " + esc(t.metres) + "</td><td>" + fixed(f.relative_risk, 2) +
        "</td><td>" + esc(pValue(f.p_value)) + "</td></tr>").join("") + "</table>";
  }

  function validationTable(body) {
    const v = body.validation;
    if (!v) return "<p class='sg-note' id='sg-no-validation'>" + esc(t.no_validation) + "</p>";
    const shares = Object.keys(v.methods.rtm);
    return "<h4>" + esc(t.validation_title) + "</h4>" +
      "<table id='sg-validation' class='sg-grid-table'><tr><th></th>" + shares.map(
        s => "<th scope='col'>" + esc(t.share_of_area) + " " + esc(s) + "</th>").join("") +
      "</tr>" + Object.entries(v.methods).map(([m, byShare]) => "<tr data-method='" + m +
        "'><th scope='row'>" + esc(t["method_" + m] || m) + "</th>" + shares.map(
        s => "<td>" + fixed(byShare[s].pai, 2) + "</td>").join("") + "</tr>").join("") +
      "</table>";
  }

  /* The risk levels of places: grids and key areas (above them) coloured by level, a
   * popup with the level, the score and the reasons. */
  function drawPlaces(body) {
    clear(body);
    slider({});
    const levels = new Map(body.levels.map(l => [l.level, l]));
    const empty = {type: "FeatureCollection", features: []};
    const style = strong => f => {
      const colour = PLACE_COLOURS[f.properties.risk_level] || "#cccccc";
      return strong ? {color: "#333", weight: 2, fillColor: colour, fillOpacity: 0.9}
        : {color: "#b07a2a", weight: 0.6, fillColor: colour, fillOpacity: 0.6};
    };
    for (const [collection, kind] of [[body.grids || empty, "grid"],
                                      [body.key_areas || empty, "key_area"]]) {
      L.geoJSON(collection, {
        style: style(kind === "key_area"),
        pointToLayer: (_f, at) => L.circleMarker(at, {radius: 7}),
        onEachFeature: (f, layer) => layer.bindPopup(placePopup(f.properties, kind, levels)),
      }).addTo(cells);
    }
    legend([[t.legend_places, body.levels.map(l => [levelLabel(l), PLACE_COLOURS[l.level]])]]);
    message(t.done + t.colon + t.places_done
      .replace("{k}", (body.key_areas || empty).features.length)
      .replace("{g}", (body.grids || empty).features.length), "ok");
  }

  function placeLevelName(l) {
    return l ? (config.lang === "en" ? l.name_en : l.name_zh) : "";
  }

  // "重大 (4) · 得分 ≥ 60"
  function levelLabel(l) {
    const from = l.from_score, to = l.to_score;
    const range = from == null ? "< " + fixed(to, 0) : to == null ? "≥ " + fixed(from, 0)
      : fixed(from, 0) + "–" + fixed(to, 0);
    return placeLevelName(l) + " (" + l.level + ") · " + t.score_range + " " + range;
  }

  function placePopup(p, kind, levels) {
    const category = p.category
      ? (config.lang === "en" ? String(p.category).replace(/_/g, " ")
        : t["key_areas:" + p.category] || p.category) : null;
    const reasons = Array.isArray(p.reasons) ? p.reasons : [];
    return rows([
      kind === "grid" ? [t.place_grid, p.name || p.code, p.name ? p.code : null]
        : [t.place_key_area, p.name || p.id, category],
      [t.f_risk_level, placeLevelName(levels.get(p.risk_level)) + " (" + p.risk_level + ")"],
      [t.f_risk_score, fixed(p.score, 1)]]) +
      "<div class='sg-reasons-title'>" + esc(t.reasons) + "</div>" +
      (reasons.length ? "<ul class='sg-reasons'>" + reasons.map(r => "<li>" +
        esc(config.lang === "en" ? r.text_en : r.text_zh) + (r.points == null ? ""
          : " <b>" + (r.points >= 0 ? "+" : "") + fixed(r.points, 1) + " " + esc(t.points) +
            "</b>") + "</li>")
        .join("") + "</ul>" : "<p class='sg-note'>" + esc(t.no_reasons) + "</p>");
  }

  function showRows() {
    const method = value("sg-method");
    document.getElementById("sg-step-row").style.display = method === "emerging" ? "" : "none";
    document.getElementById("sg-nr-row").hidden = method !== "near_repeat";
    document.getElementById("sg-clock-row").hidden = method !== "clock";
  }

  document.getElementById("sg-run").addEventListener("click", run);
  document.getElementById("sg-results-close").addEventListener("click", () => {
    closeResults();
    document.getElementById("sg-run").focus();
  });
  document.getElementById("sg-clock-grid").addEventListener("change", run);
  // Enter in a text or date field runs, as the button does
  document.getElementById("sg-panel").addEventListener("keydown", event => {
    if (event.key === "Enter" && event.target.tagName === "INPUT" &&
        event.target.type !== "range") {
      event.preventDefault();
      run();
    }
  });
  map.on("popupopen", () => { state.popup = true; });
  map.on("popupclose", () => { state.popup = false; });
  // Esc closes the innermost first: an open popup, then the results panel
  document.addEventListener("keydown", event => {
    // the warnings' panel closes itself (warnings.js)
    if (event.key !== "Escape" || event.target.closest("#sg-warnings")) return;
    if (state.popup) {
      map.closePopup();
    } else if (closeResults()) {
      document.getElementById("sg-run").focus();
    }
  }, true);  // before the map's own Esc, so that one press closes one thing
  document.getElementById("sg-compare").addEventListener("change", compare);
  document.getElementById("sg-slider").addEventListener("input", showStep);
  document.getElementById("sg-runs").addEventListener("change", reopen);
  document.getElementById("sg-watch").addEventListener("click", keepWatch);
  document.getElementById("sg-method").addEventListener("change", showRows);
  document.getElementById("sg-jurisdiction").addEventListener("change", () => {
    const params = new URLSearchParams(window.location.search);
    params.set("jurisdiction", value("sg-jurisdiction"));
    window.location.search = params.toString();
  });
  if (!config.month) message(t.no_data, "error");
  loadRuns();
  loadWatches();
  if (config.warnings) safegridWarnings(map, config.warnings);
}
