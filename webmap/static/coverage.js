/* safegrid camera coverage: fields of view, targets by covered share, gaps by risk,
 * proposed cameras with their sectors and "add to plan", and cameras switched off for a
 * what-if from their popup. Errors are shown in #sg-message. */
/* exported safegridCoverage */
function safegridCoverage(map, config) {
  "use strict";
  const t = config.text;
  const SHARE = [[0.2, "#d7191c"], [0.4, "#fdae61"], [0.6, "#ffffbf"], [0.8, "#a6d96a"],
                 [1.01, "#1a9641"]];
  const RISK = ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"];
  const CAMERA = {online: "#ff7f00", offline: "#8c8c8c", planned: "#3182bd", off: "#8c8c8c"};
  const views = L.featureGroup().addTo(map);
  const targets = L.featureGroup().addTo(map);
  const proposals = L.featureGroup().addTo(map);
  const targetLayers = new Map();  // target id -> its layer, while the targets are drawn
  const state = {busy: 0, off: new Set(), mode: null, last: null, views: null, proposed: [],
                 key: null};
  window.safegridCoverageState = {map, views, targets, proposals, state};
  const {message, value, esc, call, refused, legend, rows, fixed} =
    safegridTools(config, state);
  const STATUS = {online: t.online, offline: t.offline, planned: t.planned_cam};
  const PROPOSED = "#6a3d9a";
  const area = v => Math.round(v) + " " + t.m2;
  const metres = v => Math.round(v) + " " + t.metres;
  /* What a target's, gap's or proposal's popup shows: [property, how to say it]. */
  const FIELDS = [
    ["target_name", String], ["rank", String], ["covered_ratio", percent],
    ["road_covered_ratio", percent], ["area_m2", area], ["length_m", metres],
    ["covered_m2", area], ["covered_m", metres], ["risk", v => fixed(v, 2) + " " + t.expected],
    ["incidents", v => v + " " + t.unit_incidents], ["bearing", v => Math.round(v) + "°"],
    ["fov", v => Math.round(v) + "°"], ["range_m", metres],
    ["gain", v => fixed(v, 1) + " " + t.expected], ["gain_m2", area], ["gain_m", metres],
  ];

  function describe(p) {
    const list = p.name ? [[t.f_name, p.name, p.code]] : [];
    for (const [k, say] of FIELDS) {
      if (p[k] != null) list.push([t["f_" + k], say(p[k])]);
    }
    return rows(list);
  }

  function scene() {
    const out = {jurisdiction: value("sg-jurisdiction"), target: value("sg-target"),
                 planned: document.getElementById("sg-planned").checked,
                 off: Array.from(state.off)};
    const buffer = Number(value("sg-buffer"));
    if (out.target === "school_zones" && value("sg-buffer")) out.school_buffer = buffer;
    return out;
  }

  function query(extra) {
    const s = scene();
    const params = new URLSearchParams({jurisdiction: s.jurisdiction});
    if (extra.target) params.set("target", s.target);
    if (s.school_buffer != null && extra.target) params.set("school_buffer", s.school_buffer);
    if (s.planned) params.set("planned", "true");
    if (s.off.length && !extra.allOn) params.set("off", s.off.join(","));
    return params.toString();
  }

  function percent(x) {
    return x == null ? "–" : (100 * x).toFixed(1) + "%";
  }

  function cameraStyle(p) {
    const kind = state.off.has(p.code) ? "off" : p.watching ? "online" : p.status;
    const colour = CAMERA[kind] || CAMERA.offline;
    return {color: colour, weight: 1, fillColor: colour, fillOpacity: p.watching ? 0.25 : 0.08,
            dashArray: p.watching ? null : "4 4"};
  }

  /* A camera by its code, its state in words and its view, rounded. */
  function cameraPopup(p) {
    const status = state.off.has(p.code) ? t.switched_off_cam : STATUS[p.status] || p.status;
    let html = rows([[t.f_code, p.code], [t.f_status, status],
                     [t.f_bearing, Math.round(p.bearing)], [t.f_fov, Math.round(p.fov)],
                     [t.f_range_m, Math.round(p.range_m)],
                     [t.f_view_area, p.watching ? area(p.area_m2) : null]]);
    if (p.watching) {
      html += '<button type="button" class="sg-switch-off" data-code="' + esc(p.code) + '">' +
        esc(t.switch_off) + "</button>";
    } else if (state.off.has(p.code)) {
      html += "<p>" + esc(t.switched_off) + "</p>";
    }
    return html;
  }

  /* Each camera's view and dot on the map, by code, so a what-if patches only those
   * whose state changed. state.views holds the views as first loaded (state.viewsOff:
   * the cameras off then); state.shownOff, the cameras shown off now. */
  const cameraLayers = new Map();

  function drawCamera(f) {
    const old = cameraLayers.get(f.properties.code);
    if (old) old.forEach(layer => views.removeLayer(layer));
    const p = f.properties;
    const view = L.geoJSON(f, {
      style: () => cameraStyle(p),
      onEachFeature: (g, layer) => layer.bindPopup(() => cameraPopup(p)),
    }).addTo(views);
    const dot = L.circleMarker([p.lat, p.lon], {radius: 3, color: cameraStyle(p).color,
                                                 weight: 1, fillOpacity: 1});
    dot.feature = f;  // the camera itself, as its field of view is
    dot.bindPopup(() => cameraPopup(p)).addTo(views);
    cameraLayers.set(p.code, [view, dot]);
  }

  function viewsQuery(codes) {
    const s = scene();
    const params = new URLSearchParams({jurisdiction: s.jurisdiction});
    if (s.planned) params.set("planned", "true");
    if (s.off.length) params.set("off", s.off.join(","));
    if (codes) params.set("codes", codes.join(","));
    return params.toString();
  }

  /* Every camera's view, afresh (on opening, or when planned cameras count or not). */
  async function loadViews() {
    const planned = scene().planned;
    const result = await call("/api/coverage/views?" + viewsQuery(null));
    if (!result.ok) { refused(result); return false; }
    state.views = result.data;
    state.viewsPlanned = planned;
    state.viewsOff = new Set(state.off);
    state.shownOff = new Set(state.off);
    views.clearLayers();
    cameraLayers.clear();
    result.data.features.forEach(drawCamera);
    return true;
  }

  /* The views of the cameras switched off or on since they were drawn: from ``given``
   * (a what-if's views), from the views first loaded, or fetched for those cameras only. */
  async function syncViews(given) {
    if (!state.views || state.viewsPlanned !== scene().planned) return loadViews();
    const changed = new Set([...state.off].filter(c => !state.shownOff.has(c))
      .concat([...state.shownOff].filter(c => !state.off.has(c))));
    if (!changed.size) return true;
    const byCode = new Map(state.views.features.map(f => [f.properties.code, f]));
    const have = new Map();
    for (const f of (given ? given.features : [])) have.set(f.properties.code, f);
    for (const code of changed) {
      if (!have.has(code) && state.off.has(code) === state.viewsOff.has(code) &&
          byCode.has(code)) have.set(code, byCode.get(code));
    }
    const missing = [...changed].filter(code => !have.has(code));
    if (missing.length) {
      const result = await call("/api/coverage/views?" + viewsQuery(missing));
      if (!result.ok) { refused(result); return false; }
      for (const f of result.data.features) have.set(f.properties.code, f);
    }
    for (const code of changed) {
      if (have.has(code)) drawCamera(have.get(code));
    }
    state.shownOff = new Set(state.off);
    return true;
  }

  /* The legend's section on the cameras: their states, with their colours. */
  function cameraKey() {
    return [t.legend_cameras, [[t.online, CAMERA.online], [t.offline, CAMERA.offline, true],
                               [t.planned_cam, CAMERA.planned, true]]
      .concat(state.off.size ? [[t.switched_off_cam, CAMERA.off, true]] : [])];
  }

  function shareColour(x) {
    if (x == null) return "#cccccc";
    return SHARE.find(([top]) => x < top)[1];
  }

  function summary(html) {
    document.getElementById("sg-summary").innerHTML = html;
  }

  /* What the targets' covered shares are computed for (cameras off aside). */
  function targetKey() {
    const s = scene();
    return JSON.stringify([s.jurisdiction, s.target, s.school_buffer, s.planned]);
  }

  function targetStyle(p) {
    const colour = shareColour(p.covered_ratio);
    return state.base.summary.measure === "length_m" ? {color: colour, weight: 5, opacity: 0.9}
      : {color: colour, weight: 1.5, fillColor: colour, fillOpacity: 0.35};
  }

  /* The targets with every camera on, drawn; each layer kept by the target's id. */
  async function loadTargets() {
    const result = await call("/api/coverage?" + query({target: true, allOn: true}));
    if (!result.ok) { refused(result); return false; }
    state.base = result.data;
    state.baseKey = targetKey();
    drawTargets();
    return true;
  }

  function drawTargets() {
    targets.clearLayers();
    targetLayers.clear();
    L.geoJSON(state.base, {
      style: f => targetStyle(f.properties),
      pointToLayer: (f, at) => L.circleMarker(at, {radius: 6}),
      onEachFeature: (f, layer) => {
        layer.shown = f.properties;
        layer.bindPopup(() => describe(layer.shown));
        targetLayers.set(f.id, layer);
      },
    }).addTo(targets);
    state.drawn = "targets";
  }

  /* Each target as ``changed`` has it, else as with every camera on. */
  function patchTargets(changed) {
    const now = new Map(changed.map(f => [f.id, f.properties]));
    for (const f of state.base.features) {
      const layer = targetLayers.get(f.id);
      const p = now.get(f.id) || f.properties;
      if (layer && layer.shown !== p) {
        layer.shown = p;
        layer.setStyle(targetStyle(p));
      }
    }
  }

  async function showCoverage() {
    message(t.running);
    state.mode = "coverage";
    const s = scene();
    const fresh = state.base && state.baseKey === targetKey();
    let whatIf = null;
    const base = fresh ? Promise.resolve(true) : loadTargets();
    const asked = [
      base,
      s.off.length ? call("/api/coverage/what-if", Object.assign({changes_only: true}, s))
        .then(result => { whatIf = result; return result.ok; }) : Promise.resolve(true),
      // the views after the targets: the coverage colours come first, not slowed by them
      s.off.length ? Promise.resolve(true) : base.then(ok => ok && syncViews(null)),
    ];
    const done = await Promise.all(asked);
    if (whatIf && !whatIf.ok) { refused(whatIf); return; }
    if (done.includes(false)) return;
    if (state.drawn !== "targets") drawTargets();
    patchTargets(whatIf ? whatIf.data.features : []);
    if (whatIf && !(await syncViews(whatIf.data.views))) return;
    const body = whatIf ? whatIf.data : state.base;
    state.last = body;
    state.key = [cameraKey(), [t.legend_share, SHARE.map(([top, c], i) => [(i === 0 ? "< 20%"
      : (20 * i) + "–" + Math.min(100, Math.round(top * 100)) + "%"), c])]];
    legend(state.key);
    let text = "<b>" + esc(t.covered) + " " + percent(body.summary.covered_ratio) + "</b> · " +
      body.summary.targets + " " + esc(t.targets) + " · " + body.summary.cameras.watching +
      " " + esc(t.cameras);
    if (body.before != null && state.off.size) {
      text += "<br>" + esc(t.before) + " " + percent(body.before) + " → " + percent(body.after);
    }
    summary(text);
    document.getElementById("sg-reset").style.display = state.off.size ? "" : "none";
    message(t.coverage + t.colon + state.base.features.length + " " + t.targets, "ok");
  }

  async function showGaps() {
    message(t.running);
    state.mode = "gaps";
    const [result, shown] = await Promise.all([
      call("/api/coverage/gaps?" + query({target: true})), syncViews(null)]);
    if (!result.ok) { refused(result); return; }
    if (!shown) return;
    const body = result.data;
    state.last = body;
    targets.clearLayers();
    targetLayers.clear();
    state.drawn = "gaps";
    const n = body.features.length;
    const colour = f => RISK[Math.min(RISK.length - 1,
      Math.floor(RISK.length * (1 - (f.properties.rank - 1) / Math.max(1, n))))];
    L.geoJSON(body, {
      style: f => ({color: colour(f), weight: f.geometry.type.includes("Line") ? 5 : 1,
                    fillColor: colour(f), fillOpacity: 0.6}),
      onEachFeature: (f, layer) => layer.bindPopup(describe(f.properties)),
    }).addTo(targets);
    state.key = [cameraKey(), [t.legend_risk, RISK.map((c, i) => [i === 0 ? t.low
      : i === RISK.length - 1 ? t.high : "", c])]];
    legend(state.key);
    const size = body.summary.measure === "length_m" ? metres : area;
    summary("<b>" + body.summary.gaps + " " + esc(t.gap_count) + "</b> · " +
            esc(size(body.summary.uncovered)) + " · " + esc(t.risk) + " " +
            esc(fixed(body.summary.risk, 1) + " " + t.expected));
    message(t.gaps + t.colon + n + " " + t.gap_count, "ok");
  }

  async function siting() {
    message(t.running);
    const body = Object.assign(scene(), {k: Number(value("sg-k")),
                                         fov: Number(value("sg-fov")),
                                         range_m: Number(value("sg-range"))});
    const result = await call("/api/coverage/siting", body);
    if (!result.ok) { refused(result); return; }
    const data = result.data;
    state.proposed = data.features;
    proposals.clearLayers();
    const list = document.getElementById("sg-proposals");
    list.innerHTML = "<b>" + esc(t.proposed) + "</b> " + esc(t.before) + " " +
      percent(data.before) + " → " + esc(t.after) + " " + percent(data.after);
    const ol = document.createElement("ol");
    data.features.forEach((f, i) => {
      const p = f.properties;
      L.geoJSON(p.view, {style: {color: PROPOSED, weight: 1, fillColor: PROPOSED,
                                 fillOpacity: 0.3}}).addTo(proposals);
      const [lon, lat] = f.geometry.coordinates;
      L.marker([lat, lon], {title: "#" + p.rank}).bindPopup(describe(p))
        .addTo(proposals);
      const item = document.createElement("li");
      item.textContent = t.f_bearing + " " + Math.round(p.bearing) + " · " + t.gain + " " +
        fixed(p.gain, 1) + " " + t.expected + " ";
      item.title = t.gain_note;
      if (config.canPlan) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "sg-add-plan";
        button.textContent = t.add_to_plan;
        button.addEventListener("click", () => addToPlan(f, data.run, button));
        item.append(button);
      }
      ol.append(item);
      if (i === 0) map.panTo([lat, lon]);
    });
    const note = document.createElement("p");
    note.className = "sg-note";
    note.textContent = t.f_gain + t.colon + t.gain_note;
    list.append(ol, note);
    legend((state.key || [cameraKey()]).concat([[t.legend_proposed,
                                                 [[t.proposed_view, PROPOSED]]]]));
    message(t.siting + t.colon + data.features.length + " " + t.proposed, "ok");
  }

  async function addToPlan(feature, run, button) {
    const p = feature.properties;
    const code = "PLAN-" + value("sg-jurisdiction") + "-" + run + "-" + p.rank;
    const result = await call("/collections/cameras/items", {
      type: "Feature", geometry: feature.geometry,
      properties: {code, bearing: p.bearing, fov: p.fov, range_m: p.range_m,
                   status: "planned"}});
    if (!result.ok) { refused(result); return; }
    button.disabled = true;
    button.textContent = t.added;
    message(code + t.colon + t.added, "ok");
    const added = await call("/api/coverage/views?" + viewsQuery([code]));
    if (!added.ok) { refused(added); return; }
    for (const f of added.data.features) {
      state.views.features.push(f);
      drawCamera(f);
    }
  }

  map.on("popupopen", event => {
    const button = event.popup.getElement().querySelector(".sg-switch-off");
    if (!button) return;
    button.addEventListener("click", async () => {
      state.off.add(button.dataset.code);
      map.closePopup();
      await (state.mode === "gaps" ? showGaps() : showCoverage());
    });
  });
  document.getElementById("sg-coverage").addEventListener("click", showCoverage);
  document.getElementById("sg-gaps").addEventListener("click", showGaps);
  document.getElementById("sg-siting").addEventListener("click", siting);
  document.getElementById("sg-reset").addEventListener("click", async () => {
    state.off.clear();
    await (state.mode === "gaps" ? showGaps() : showCoverage());
  });
  document.getElementById("sg-jurisdiction").addEventListener("change", () => {
    const params = new URLSearchParams(window.location.search);
    params.set("jurisdiction", value("sg-jurisdiction"));
    window.location.search = params.toString();
  });
  showCoverage();
}
