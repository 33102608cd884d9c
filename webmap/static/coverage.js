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
  const state = {busy: 0, off: new Set(), mode: null, last: null, views: null, proposed: []};
  window.safegridCoverageState = {map, views, targets, proposals, state};
  const {message, value, esc, call, refused, legend, table} = safegridTools(config, state);

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
    if (s.off.length) params.set("off", s.off.join(","));
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

  function cameraPopup(p) {
    let html = table(p, ["id", "lon", "lat", "watching", "area_m2"]);
    if (p.watching) {
      html += '<button type="button" class="sg-switch-off" data-code="' + esc(p.code) + '">' +
        esc(t.switch_off) + "</button>";
    } else if (state.off.has(p.code)) {
      html += "<p>" + esc(t.switched_off) + "</p>";
    }
    return html;
  }

  async function loadViews() {
    const result = await call("/api/coverage/views?" + query({}));
    if (!result.ok) { refused(result); return false; }
    state.views = result.data;
    views.clearLayers();
    L.geoJSON(result.data, {
      style: f => cameraStyle(f.properties),
      onEachFeature: (f, layer) => layer.bindPopup(() => cameraPopup(f.properties)),
    }).addTo(views);
    for (const f of result.data.features) {
      const p = f.properties;
      L.circleMarker([p.lat, p.lon], {radius: 3, color: cameraStyle(p).color, weight: 1,
                                      fillOpacity: 1})
        .bindPopup(() => cameraPopup(p)).addTo(views);
    }
    return true;
  }

  function shareColour(x) {
    if (x == null) return "#cccccc";
    return SHARE.find(([top]) => x < top)[1];
  }

  function summary(html) {
    document.getElementById("sg-summary").innerHTML = html;
  }

  async function showCoverage() {
    message(t.running);
    state.mode = "coverage";
    const s = scene();
    const result = s.off.length
      ? await call("/api/coverage/what-if", s)
      : await call("/api/coverage?" + query({target: true}));
    if (!result.ok) { refused(result); return; }
    if (!(await loadViews())) return;
    const body = result.data;
    state.last = body;
    targets.clearLayers();
    const line = body.summary.measure === "length_m";
    L.geoJSON(body, {
      style: f => {
        const colour = shareColour(f.properties.covered_ratio);
        return line ? {color: colour, weight: 5, opacity: 0.9}
          : {color: colour, weight: 1.5, fillColor: colour, fillOpacity: 0.35};
      },
      pointToLayer: (f, at) => L.circleMarker(at, {radius: 6}),
      onEachFeature: (f, layer) => layer.bindPopup(table(f.properties, ["id"])),
    }).addTo(targets);
    legend(SHARE.map(([top, c], i) => [(i === 0 ? "< 20%" : (20 * i) + "–" +
                                        Math.min(100, Math.round(top * 100)) + "%"), c]));
    let text = "<b>" + esc(t.covered) + " " + percent(body.summary.covered_ratio) + "</b> · " +
      body.summary.targets + " " + esc(t.targets) + " · " + body.summary.cameras.watching +
      " " + esc(t.cameras);
    if (body.before != null && state.off.size) {
      text += "<br>" + esc(t.before) + " " + percent(body.before) + " → " + percent(body.after);
    }
    summary(text);
    document.getElementById("sg-reset").style.display = state.off.size ? "" : "none";
    message(t.coverage + ": " + body.features.length + " " + t.targets, "ok");
  }

  async function showGaps() {
    message(t.running);
    state.mode = "gaps";
    const result = await call("/api/coverage/gaps?" + query({target: true}));
    if (!result.ok) { refused(result); return; }
    if (!(await loadViews())) return;
    const body = result.data;
    state.last = body;
    targets.clearLayers();
    const n = body.features.length;
    const colour = f => RISK[Math.min(RISK.length - 1,
      Math.floor(RISK.length * (1 - (f.properties.rank - 1) / Math.max(1, n))))];
    L.geoJSON(body, {
      style: f => ({color: colour(f), weight: f.geometry.type.includes("Line") ? 5 : 1,
                    fillColor: colour(f), fillOpacity: 0.6}),
      onEachFeature: (f, layer) => layer.bindPopup(table(f.properties, ["target_id"])),
    }).addTo(targets);
    legend(RISK.map((c, i) => [i === 0 ? t.low + " " + t.risk
      : i === RISK.length - 1 ? t.high + " " + t.risk : "", c]));
    summary("<b>" + body.summary.gaps + " " + esc(t.gap_count) + "</b> · " +
            Math.round(body.summary.uncovered) + (body.summary.measure === "length_m"
      ? " m" : " m²") + " · " + esc(t.risk) + " " + body.summary.risk);
    message(t.gaps + ": " + n + " " + t.gap_count, "ok");
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
      L.geoJSON(p.view, {style: {color: "#6a3d9a", weight: 1, fillColor: "#6a3d9a",
                                 fillOpacity: 0.3}}).addTo(proposals);
      const [lon, lat] = f.geometry.coordinates;
      L.marker([lat, lon], {title: "#" + p.rank}).bindPopup(table(p, ["view"]))
        .addTo(proposals);
      const item = document.createElement("li");
      item.textContent = p.bearing + "° · " + t.gain + " " + p.gain + " ";
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
    list.append(ol);
    message(t.siting + ": " + data.features.length + " " + t.proposed, "ok");
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
    message(code + ": " + t.added, "ok");
    await loadViews();
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
