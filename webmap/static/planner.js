/* safegrid grid planner: select, resize (GeoMan), split, merge, new grid, history,
 * validation, labels and legend.
 *
 * Grids come from the items API for the area in view; every change goes to the API
 * with If-Match and the grids it changed are redrawn from the answer. Errors (412
 * conflicts, 4xx refusals) are shown in #sg-message in the page language, never
 * swallowed: the API's known refusals are matched to texts saying what to do instead.
 *
 * While a line or shape is being drawn (split, new grid, reshape) the grids take no
 * clicks, so every click places a vertex; Esc or the Cancel button leaves any mode,
 * Enter or a double-click finishes a split line or a new grid (so does a click on the
 * new grid's first point). A merge, a new grid and a restore ask first, in an in-page
 * dialog; an earlier version is shown on the map (dashed) before it is restored.
 * Labels are short and thinned: a label overlapping one already shown is hidden.
 * Requests, the status line and HTML escaping are tools.js's (loaded before this).
 */
/* exported safegridPlanner */
function safegridPlanner(map, config) {
  "use strict";
  const t = config.text;
  const KIND_STYLE = {comprehensive: config.styles.comprehensive,
                      dedicated: config.styles.dedicated};
  const SELECTED = config.styles.selected;
  const byId = new Map();       // grid id -> Leaflet layer
  const versions = new Map();   // grid id -> version (the ETag to send)
  const gridLayer = L.featureGroup().addTo(map);
  const outline = L.featureGroup().addTo(map);
  const problems = L.featureGroup().addTo(map);
  const preview = L.featureGroup().addTo(map);   // an earlier version, or a new grid drawn
  let selected = null;          // id of the selected grid
  let editing = false;
  // "merge" | "confirm" | "split" | "new" | "carve" | "preview" | null
  let mode = null;
  const state = {busy: 0};
  const tools = safegridTools(config, state);
  const {message, esc, call} = tools;
  window.safegridPlannerState = {map, byId, versions, gridLayer, preview, state,
                                 selected: () => selected, mode: () => mode};
  const refusals = (config.refusals || []).map(([key, pattern]) => [key, new RegExp(pattern)]);
  map.pm.setLang("safegrid-" + config.lang, {tooltips: {
    firstVertex: t.pm_first, continueLine: t.pm_continue, finishLine: t.pm_finish,
    finishPoly: t.pm_finish_poly}},
                 config.lang);

  function fill(text, values) {
    return text.replace(/\{(\d+)\}/g, (all, n) => values[Number(n) - 1] ?? all);
  }

  /* What the planner should do instead, in the page language; null when unknown. */
  function refusalText(reason) {
    for (const [key, pattern] of refusals) {
      const found = pattern.exec(reason);
      if (found) return fill(t[key], found.slice(1).map(byCode));
    }
    return null;
  }

  /* A grid code as its name with the code after it (when the grid is on the map). */
  function byCode(value) {
    for (const layer of byId.values()) {
      const p = layer.feature.properties;
      if (p.code === value && p.name && p.name !== value) return fill(t.grid_named, [p.name, value]);
    }
    return value;
  }

  /* A refusal the planner knows says what to do instead; any other as tools.js says it. */
  function errorText(result) {
    const known = refusalText((result.data || {}).error || "");
    return known ? fill(t.refused_because, [known]) : tools.errorText(result);
  }

  /* The version of grid `id` as read, for If-Match: a change to a newer one is refused. */
  function ifMatch(id) {
    return {"If-Match": '"' + versions.get(id) + '"'};
  }

  /* Short: the grid's number in its community (or its name), and households. */
  function label(feature) {
    const p = feature.properties;
    const number = /第(\d+)网格$/.exec(p.name || "");
    const name = number ? fill(t.grid_no, [number[1]]) : String(p.name || p.code);
    return "<span class='sg-label-name'>" + esc(name) + "</span> · " +
      esc(fill(t.n_hh, [p.households == null ? "–" : p.households]));
  }

  function overlaps(a, b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  }

  /* The selected grid's label first, then most households first: a label is shown
     unless it would cover one already shown. */
  function thinLabels() {
    const tips = [];
    byId.forEach((layer, id) => {
      const tip = layer.getTooltip();
      const el = tip && tip.getElement();
      if (!el || !map.hasLayer(tip)) return;
      el.style.visibility = "";
      tips.push([id === selected ? Infinity : (layer.feature.properties.households || 0), el]);
    });
    // a label left behind by a grid redrawn meanwhile (overlapping loads) goes
    const current = new Set(tips.map(([, el]) => el));
    map.getPane("tooltipPane").querySelectorAll(".sg-label").forEach(el => {
      if (!current.has(el)) el.remove();
    });
    tips.sort((a, b) => b[0] - a[0]);
    const kept = [];
    for (const [, el] of tips) {
      const box = el.getBoundingClientRect();
      const clash = kept.some(other => overlaps(box, other));
      el.style.visibility = clash ? "hidden" : "";
      el.classList.toggle("sg-hidden", clash);
      if (!clash) kept.push(box);
    }
  }

  function styleOf(feature) {
    return KIND_STYLE[feature.properties.kind] || KIND_STYLE.comprehensive;
  }

  function draw(feature) {
    const old = byId.get(feature.id);
    if (old) {
      gridLayer.removeLayer(old);
    }
    const layer = L.geoJSON(feature, {style: styleOf, className: "sg-grid"}).getLayers()[0];
    layer.feature = feature;
    layer.bindTooltip(label(feature), {permanent: map.getZoom() >= 15, direction: "center",
                                       className: "sg-label"});
    layer.on("click", (e) => { L.DomEvent.stopPropagation(e); onGridClick(feature.id); });
    gridLayer.addLayer(layer);
    if (feature.properties.version != null) versions.set(feature.id, feature.properties.version);
    byId.set(feature.id, layer);
    if (feature.id === selected) layer.setStyle(SELECTED);
    scheduleThin();
    return layer;
  }

  let thinPending = false;

  /* Thin the labels once the grids drawn in this turn are all on the map. */
  function scheduleThin() {
    if (thinPending) return;
    thinPending = true;
    requestAnimationFrame(() => { thinPending = false; thinLabels(); });
  }

  function remove(id) {
    const layer = byId.get(id);
    if (layer) gridLayer.removeLayer(layer);
    byId.delete(id);
    versions.delete(id);
    if (selected === id) select(null);
  }

  async function loadGrids() {
    if (map.getZoom() < 13) {
      message(t.zoom);
      return;
    }
    const b = map.getBounds();
    let url = "/collections/grids/items?limit=1000&bbox=" +
      [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(v => v.toFixed(6)).join(",");
    while (url) {
      const result = await call(url);
      if (!result.ok) { message(errorText(result), "error"); return; }
      for (const feature of result.data.features) {
        if (editing && feature.id === selected) continue;  // keep the shape being edited
        draw(feature);
      }
      const next = (result.data.links || []).find(l => l.rel === "next");
      url = next ? next.href : null;
    }
    preview.bringToFront();
    thinLabels();
  }

  async function loadOutline() {
    const result = await call("/collections/jurisdictions/items/" + config.jurisdictionId);
    if (result.ok) {
      L.geoJSON(result.data, {style: {color: "#333", weight: 3, fill: false},
                              interactive: false}).addTo(outline);
    }
  }

  function applyChanges(data) {
    for (const [id, version] of Object.entries(data.versions || {})) {
      versions.set(Number(id), version);
    }
    for (const feature of (data.changed || {}).features || []) draw(feature);
    for (const id of data.removed || []) remove(id);
    preview.bringToFront();
    thinLabels();
  }

  async function select(id) {
    if (editing) stopEditing(false);
    if (selected !== null && byId.get(selected)) {
      byId.get(selected).setStyle(styleOf(byId.get(selected).feature));
    }
    selected = id;
    document.getElementById("sg-history").innerHTML = "";
    if (id === null) {
      document.getElementById("sg-attributes").textContent = t.select;
      renderActions();
      return;
    }
    byId.get(id).setStyle(SELECTED);
    const result = await call("/collections/grids/items/" + id);
    if (!result.ok) { message(errorText(result), "error"); return; }
    versions.set(id, Number((result.etag || "").replace(/[W/"]/g, "")));
    draw(result.data);
    showAttributes(result.data);
    renderActions();
  }

  function showAttributes(feature) {
    const p = feature.properties;
    const rows = ["code", "name", "kind", "households", "population", "area_m2", "key_areas",
                  "incidents_30d"].map(key => {
      let value = p[key];
      if (key === "kind") value = t[value] || value;
      if (key === "area_m2" && value != null) value = Math.round(value).toLocaleString();
      return "<tr><th>" + esc(t[key] || key) + "</th><td data-field='" + key + "'>" +
        esc(value == null ? "–" : String(value)) + "</td></tr>";
    });
    rows.push("<tr><th>" + esc(t.version) + "</th><td data-field='version'>" +
              versions.get(feature.id) + "</td></tr>");
    document.getElementById("sg-attributes").innerHTML = "<table>" + rows.join("") + "</table>";
  }

  function button(id, text, handler) {
    const b = document.createElement("button");
    b.type = "button";
    b.id = id;
    b.textContent = text;
    b.addEventListener("click", handler);
    return b;
  }

  function renderActions() {
    const box = document.getElementById("sg-actions");
    box.innerHTML = "";
    const newButton = document.getElementById("sg-new");
    if (newButton) newButton.disabled = editing || mode !== null;
    if (!config.canWrite) return;
    if (editing) {
      box.append(button("sg-save", t.save, save), button("sg-cancel", t.cancel, cancelMode));
      return;
    }
    if (mode === "preview") {
      box.append(button("sg-restore", t.restore, askRestore),
                 button("sg-cancel", t.cancel, cancelMode));
      return;
    }
    if (mode !== null) {
      box.append(button("sg-cancel", t.cancel, cancelMode));
      return;
    }
    if (selected === null) return;
    box.append(button("sg-edit", t.edit, startEditing),
               button("sg-split", t.split, startSplit),
               button("sg-merge", t.merge, startMerge),
               button("sg-history-button", t.history, showHistory),
               button("sg-units", t.units, regenerateUnits));
  }

  /* Grids ignore the pointer while something is drawn (see planner.css). */
  function setDrawing(on) {
    map.getContainer().classList.toggle("sg-drawing", on);
  }

  /* Leave whatever mode is on (Esc, Cancel): nothing is written. */
  function cancelMode() {
    closeDialog(false);
    if (mode === "split") stopSplit();
    if (mode === "new") stopNew();
    preview.clearLayers();
    previewed = null;
    if (editing) stopEditing(true);
    mode = null;
    restyleAll();
    message("");
    renderActions();
  }

  function restyleAll() {
    byId.forEach((layer, id) => layer.setStyle(id === selected ? SELECTED
                                                             : styleOf(layer.feature)));
  }

  function startEditing() {
    const layer = byId.get(selected);
    editing = true;
    setDrawing(true);
    focusGrid(layer);
    layer.pm.enable({snappable: true, snapDistance: 15, allowSelfIntersection: false,
                     draggable: false, removeLayerBelowMinVertexCount: false});
    renderActions();
  }

  function stopEditing(revert) {
    const layer = byId.get(selected);
    if (layer && layer.pm.enabled()) layer.pm.disable();
    editing = false;
    setDrawing(false);
    if (revert && layer) draw(layer.feature);
    renderActions();
  }

  async function save() {
    const layer = byId.get(selected);
    const p = layer.feature.properties;
    const feature = {type: "Feature", geometry: layer.toGeoJSON(9).geometry,
                     properties: {code: p.code, name: p.name, kind: p.kind,
                                  jurisdiction_code: p.jurisdiction_code}};
    const id = selected;
    const result = await call("/collections/grids/items/" + id, feature,
                              {method: "PUT", headers: ifMatch(id)});
    layer.pm.disable();
    editing = false;
    setDrawing(false);
    if (result.ok) {
      applyChanges(result.data);
      showAttributes(result.data);
      message(t.saved + t.colon + result.data.changed.features.map(f => f.properties.code)
        .join(", "), "ok");
    } else if (result.status === 412) {
      const current = result.data.current;
      if (current) {
        versions.set(id, current.properties.version);
        const fresh = {type: "Feature", id, geometry: current.geometry,
                       properties: current.properties};
        draw(fresh);
        showAttributes(fresh);
      }
      message(t.conflict + " (412)", "error");
    } else {
      draw(layer.feature);
      message(errorText(result), "error");
    }
    renderActions();
  }

  function startMerge() {
    mode = "merge";
    message(t.pick_merge);
    renderActions();
  }

  function gridName(id) {
    const p = byId.get(id).feature.properties;
    return p.name || String(p.code);
  }

  function households(id) {
    const n = byId.get(id).feature.properties.households;
    return n == null ? "–" : n;
  }

  async function askMerge(id) {
    mode = "confirm";
    byId.get(id).setStyle(SELECTED);
    const ids = [selected, id];
    const lines = ids.map(i => gridName(i) + " · " + fill(t.n_households, [households(i)]));
    const total = ids.reduce((sum, i) => sum + (Number(households(i)) || 0), 0);
    const yes = await openDialog(fill(t.confirm_merge, [gridName(selected)]), lines,
                                 fill(t.merge_total, [total]));
    if (mode !== "confirm") return;  // cancelled meanwhile
    mode = null;
    renderActions();
    if (yes) {
      await merge(id);
    } else {
      restyleAll();
      message("");
    }
  }

  async function merge(id) {
    const result = await call("/api/grids/merge",
                              {ids: [selected, id], versions: {[selected]: versions.get(selected)}});
    if (result.ok) {
      applyChanges(result.data);
      message(fill(t.merged_into, [gridName(result.data.id)]), "ok");
      select(result.data.id);
    } else {
      refusedEdit(result);
    }
  }

  /* Say why an edit was refused; after a 412 the selected grid is loaded afresh. */
  function refusedEdit(result) {
    restyleAll();
    message(errorText(result), "error");
    if (result.status === 412 && selected !== null) select(selected);
  }

  async function onGridClick(id) {
    if (mode === "merge" && selected !== null && id !== selected) {
      askMerge(id);
      return;
    }
    if (!editing && mode === null) select(id);
  }

  let dialogDone = null;        // resolves the open dialog's promise

  /* A small modal dialog (OK / Cancel); resolves to true when confirmed. */
  function openDialog(title, lines, footer, fields) {
    const back = document.createElement("div");
    back.id = "sg-dialog-back";
    const box = document.createElement("div");
    box.id = "sg-dialog";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "true");
    box.setAttribute("aria-labelledby", "sg-dialog-title");
    const head = document.createElement("p");
    head.id = "sg-dialog-title";
    head.textContent = title;
    const list = document.createElement("ul");
    for (const line of lines) {
      const item = document.createElement("li");
      item.textContent = line;
      list.append(item);
    }
    const foot = document.createElement("p");
    foot.textContent = footer;
    const row = document.createElement("div");
    row.className = "sg-row";
    row.append(button("sg-dialog-ok", t.ok, () => closeDialog(true)),
               button("sg-dialog-cancel", t.cancel, () => closeDialog(false)));
    box.append(head, list);
    if (fields) box.append(fields);
    box.append(foot, row);
    back.append(box);
    document.body.append(back);
    (box.querySelector("input, select") || document.getElementById("sg-dialog-ok")).focus();
    return new Promise(resolve => { dialogDone = resolve; });
  }

  function closeDialog(answer) {
    const back = document.getElementById("sg-dialog-back");
    const kind = document.getElementById("sg-new-kind");
    if (kind) {
      lastFields = {kind: kind.value, name: document.getElementById("sg-new-name").value.trim()};
    }
    if (back) back.remove();
    if (dialogDone) {
      const done = dialogDone;
      dialogDone = null;
      done(answer);
    }
  }

  /* Close enough that every vertex can be grabbed, clear of the side panel. */
  function focusGrid(layer) {
    const panel = document.getElementById("sg-panel").offsetWidth + 40;
    map.fitBounds(layer.getBounds(), {maxZoom: 19, animate: false,
                                      paddingTopLeft: [60, 60], paddingBottomRight: [panel, 60]});
  }

  function startSplit() {
    focusGrid(byId.get(selected));
    mode = "split";
    setDrawing(true);
    message(t.draw_split);
    renderActions();
    // GeoMan turns double-click zoom back on when the line is finished, before the
    // double-click that finished it arrives: keep it off until that has passed.
    map.doubleClickZoom.disable();
    map.pm.enableDraw("Line", {snappable: true, snapDistance: 15, finishOn: "dblclick"});
  }

  function stopSplit() {
    map.pm.disableDraw("Line");
    setDrawing(false);
    setTimeout(() => map.doubleClickZoom.enable(), 600);
  }

  function finishSplitLine() {
    const line = map.pm.Draw.Line;
    if (line.enabled() && line._layer.getLatLngs().length >= 2) line._finishShape();
  }

  /* Enter confirms (unless Cancel has the focus), Esc cancels, Tab stays in the dialog. */
  function dialogKey(e) {
    const no = document.getElementById("sg-dialog-cancel");
    if (e.key === "Enter" || e.key === "Escape") {
      e.preventDefault();
      closeDialog(e.key === "Enter" && document.activeElement !== no);
    } else if (e.key === "Tab") {
      e.preventDefault();
      const stops = [...document.querySelectorAll("#sg-dialog input, #sg-dialog select, " +
                                                  "#sg-dialog button")];
      const at = stops.indexOf(document.activeElement);
      stops[(at + (e.shiftKey ? stops.length - 1 : 1)) % stops.length].focus();
    }
  }

  function onKey(e) {
    if (document.getElementById("sg-dialog-back")) {
      dialogKey(e);
      return;
    }
    if (e.key === "Escape" && (mode !== null || editing)) {
      e.preventDefault();
      cancelMode();
    } else if (e.key === "Enter" && mode === "split") {
      e.preventDefault();
      finishSplitLine();
    } else if (e.key === "Enter" && mode === "new") {
      e.preventDefault();
      finishNewGrid();
    }
  }

  map.on("pm:create", (e) => {
    map.removeLayer(e.layer);
    if (mode === "new" && e.shape === "Polygon") {
      askCarve(e.layer.toGeoJSON(9).geometry);
      return;
    }
    if (mode !== "split" || selected === null) return;
    mode = null;
    stopSplit();
    renderActions();
    split(selected, e.layer.toGeoJSON(9).geometry);
  });

  async function split(id, line) {
    const result = await call("/api/grids/" + id + "/split", {line}, {headers: ifMatch(id)});
    if (!result.ok) {
      refusedEdit(result);
      return;
    }
    const known = new Set(byId.keys());
    applyChanges(result.data);
    // the grid cut and the grid made, not the neighbours merely touched up
    const halves = result.data.changed.features.filter(f => f.id === id || !known.has(f.id));
    message(fill(t.split_done, [halves.map(f => f.properties.code).join(t.list_sep)]), "ok");
    select(id);  // its attributes and version as stored now
  }

  function when(v) {
    return (v.updated_by || "") + " · " + (v.updated_at || "").slice(0, 19).replace("T", " ");
  }

  async function showHistory() {
    const id = selected;
    const result = await call("/api/grids/" + id + "/history");
    const box = document.getElementById("sg-history");
    if (!result.ok) { message(errorText(result), "error"); return; }
    box.innerHTML = "";
    const list = document.createElement("ol");
    for (const v of result.data.versions.slice().reverse()) {
      const item = document.createElement("li");
      item.textContent = t.version + " " + v.version + " · " + when(v) + " ";
      if (v.version === versions.get(id)) {
        item.append("(" + t.current + ")");
      } else {
        item.append(button("sg-preview-" + v.version, t.preview, () => showVersion(id, v)));
      }
      list.append(item);
    }
    box.append(list);
  }

  let previewed = null;         // {id, version} shown on the map

  /* An earlier version on the map (dashed), the map fitted to it; 恢复 or 取消 next. */
  function showVersion(id, v) {
    if (id !== selected || editing) return;
    if (mode !== null && mode !== "preview") cancelMode();
    preview.clearLayers();
    const shape = L.geoJSON(v.geometry, {style: config.styles.old_version,
                                         interactive: false, className: "sg-preview"});
    shape.addTo(preview);
    previewed = {id, version: v.version};
    mode = "preview";
    focusGrid(shape);
    message(fill(t.previewing, [v.version, when(v)]));
    renderActions();
  }

  async function askRestore() {
    if (mode !== "preview" || previewed === null) return;
    const {id, version} = previewed;
    mode = "confirm";
    const yes = await openDialog(fill(t.confirm_restore, [gridName(id), version]),
                                 [fill(t.restore_now, [versions.get(id)])], t.restore_hint);
    if (mode !== "confirm") return;  // cancelled meanwhile
    if (!yes || !config.canWrite) {
      mode = "preview";
      renderActions();
      return;
    }
    mode = null;
    preview.clearLayers();
    previewed = null;
    renderActions();
    await restore(id, version);
  }

  async function restore(id, version) {
    const result = await call("/api/grids/" + id + "/restore", {version},
                              {headers: ifMatch(id)});
    if (result.ok) {
      applyChanges(result.data);
      showAttributes(result.data);
      message(t.restored + t.colon + t.version + " " + version, "ok");
      showHistory();
    } else {
      refusedEdit(result);
    }
  }

  /* --- a new grid, drawn by clicks and carved out of the grids it covers ------------ */

  function startNew() {
    if (editing) stopEditing(true);
    if (mode !== null) cancelMode();
    mode = "new";
    setDrawing(true);
    message(t.draw_new);
    renderActions();
    map.doubleClickZoom.disable();  // as for a split line: the finishing double-click
    map.pm.enableDraw("Polygon", {snappable: true, snapDistance: 15, finishOn: "dblclick",
                                  allowSelfIntersection: false,
                                  templineStyle: config.styles.drawn,
                                  hintlineStyle: {color: config.styles.drawn.color,
                                                  dashArray: "5 5"},
                                  pathOptions: config.styles.drawn});
  }

  function stopNew() {
    map.pm.disableDraw("Polygon");
    setDrawing(false);
    setTimeout(() => map.doubleClickZoom.enable(), 600);
  }

  function finishNewGrid() {
    const shape = map.pm.Draw.Polygon;
    if (shape.enabled() && shape._layer.getLatLngs().length >= 3) shape._finishShape();
  }

  function kindAndName() {
    const fields = document.createElement("div");
    fields.className = "sg-fields";
    const kind = document.createElement("select");
    kind.id = "sg-new-kind";
    for (const value of ["comprehensive", "dedicated"]) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = t[value];
      kind.append(option);
    }
    const name = document.createElement("input");
    name.id = "sg-new-name";
    name.type = "text";
    name.maxLength = 100;
    name.placeholder = t.name_auto;
    for (const [text, input] of [[t.kind, kind], [t.name, name]]) {
      const row = document.createElement("label");
      row.append(text + " ", input);
      fields.append(row);
    }
    return fields;
  }

  /* The grids whose drawn outline the new shape's box meets, with the versions read. */
  function readVersions(shape) {
    const box = shape.getBounds();
    const out = {};
    byId.forEach((layer, id) => {
      if (versions.has(id) && layer.getBounds().intersects(box)) out[id] = versions.get(id);
    });
    return out;
  }

  async function askCarve(geometry) {
    mode = "carve";
    stopNew();
    renderActions();
    preview.clearLayers();
    const shape = L.geoJSON(geometry, {style: config.styles.drawn, interactive: false,
                                       className: "sg-drawn"});
    shape.addTo(preview);
    const yes = await openDialog(t.new_title, [], t.new_hint, kindAndName());
    if (mode !== "carve") return;  // cancelled meanwhile
    mode = null;
    renderActions();
    if (!yes) {
      preview.clearLayers();
      message("");
      return;
    }
    await carve(geometry, lastFields.kind, lastFields.name, readVersions(shape));
    preview.clearLayers();
  }

  let lastFields = {kind: "comprehensive", name: ""};  // read as the dialog closes

  async function carve(geometry, kind, name, read) {
    const body = {jurisdiction: config.jurisdiction, geometry, kind, versions: read};
    if (name) body.name = name;
    const result = await call("/api/grids/carve", body);
    if (!result.ok) {
      if (result.status === 412 && result.data && result.data.current) {
        versions.set(result.data.current.id, result.data.current.properties.version);
      }
      restyleAll();
      message(errorText(result), "error");
      if (result.status === 412) loadGrids();
      return;
    }
    const made = result.data.id;
    applyChanges(result.data);
    const others = result.data.changed.features.filter(f => f.id !== made).length;
    message(fill(t.carved, [result.data.properties.name, others]), "ok");
    await select(made);
  }

  async function regenerateUnits() {
    const result = await call("/api/grids/" + selected + "/units", null, {method: "POST"});
    if (result.ok) {
      message(t.units_done + t.colon + result.data.features.length, "ok");
    } else {
      message(errorText(result), "error");
    }
  }

  async function validate() {
    problems.clearLayers();
    const result = await call("/api/grids/validate?jurisdiction=" +
                              encodeURIComponent(config.jurisdiction));
    if (!result.ok) { message(errorText(result), "error"); return; }
    if (result.data.valid) {
      message(t.valid, "ok");
      return;
    }
    const colours = config.problemColours;
    const kindName = kind => t["problem_" + kind] || kind;
    L.geoJSON(result.data.problems, {
      style: f => ({color: colours[f.properties.kind] || "#ff0000", weight: 3,
                    fillOpacity: 0.45}),
      className: "sg-problem",
      onEachFeature: (f, layer) => layer.bindTooltip(esc(
        kindName(f.properties.kind) + " · " +
        fill(t.m2, [Math.round(f.properties.area_m2).toLocaleString()]))),
    }).addTo(problems);
    const kinds = [...new Set(result.data.problems.features.map(f => f.properties.kind))];
    message(fill(t.problems_list, [kinds.map(kindName).join(t.list_sep)]), "error");
  }

  document.getElementById("sg-validate").addEventListener("click", validate);
  const newButton = document.getElementById("sg-new");
  if (newButton) newButton.addEventListener("click", startNew);
  document.addEventListener("keydown", onKey);
  map.on("click", () => { if (!editing && mode === null) select(null); });
  map.on("moveend", loadGrids);
  map.on("zoomend", () => {
    const permanent = map.getZoom() >= 15;
    byId.forEach(layer => {
      const tip = layer.getTooltip();
      if (tip && tip.options.permanent === permanent) return;  // as it is
      layer.unbindTooltip();
      layer.bindTooltip(label(layer.feature), {permanent, direction: "center",
                                               className: "sg-label"});
    });
    thinLabels();
  });
  loadOutline();
  loadGrids();
}
