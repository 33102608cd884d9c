/* safegrid border joint defence: the pair's rough outlines at once (sent with the page),
 * then the zone of a shared border with both sides' layers, the crossings (green watched,
 * red not), the hot cells, and the joint patrol plan (sectors and routes per team, the
 * stops a route could not reach ringed on the map and listed in #sg-unreached with the
 * reason), printable. Errors are shown in #sg-message. The legend says per side which
 * server its data came from and as of when (a partner city's server, a peer, drawn
 * dashed), and warns when the partner's side is an old copy or missing. The cameras that
 * see into the zone come with the border's answer: ours filled, the partner server's
 * hollow (white inside), each popup saying which server it came from. */
/* exported safegridBorder */
function safegridBorder(map, config) {
  "use strict";
  const t = config.text;
  const SIDES = ["#1f78b4", "#33a02c"];
  const TEAMS = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628",
                 "#f781bf", "#999999"];
  /* The pair's outlines come with the page: drawn before the border is computed. */
  const outline = L.geoJSON(config.outlines, {
    style: {color: "#555", weight: 1.5, dashArray: "4 4", fill: false},
    interactive: false}).addTo(map);
  const outlined = (config.outlines.features || []).map(f => f.properties.code).sort().join();
  const zone = L.featureGroup().addTo(map);
  const marks = L.featureGroup().addTo(map);
  const plan = L.featureGroup().addTo(map);
  const missed = L.featureGroup().addTo(map);
  const state = {busy: 0, border: null, plan: null, key: []};
  window.safegridBorderState = {map, outline, zone, marks, plan, missed, state};
  const missedList = document.createElement("div");
  missedList.id = "sg-unreached";
  document.getElementById("sg-summary").after(missedList);
  const {message, value, esc, call, errorText, refused, legend, rows, fixed} =
    safegridTools(config, state);
  const CROSSING = {covered: "#1a9641", uncovered: "#d7191c"};
  const CAMERA = "#ff7f00";
  const STATUS = {online: t.online, offline: t.offline, planned: t.planned};

  /* A side's city or district by name (its code as secondary text): [name, code]. */
  function city(code) {
    const side = state.border.zone.features.find(f => f.properties.side === code);
    return [side ? side.properties.name : code, code];
  }

  function sidePopup(p) {
    return rows([[t.f_side, ...city(p.side)],
                 [t.f_area, fixed(p.area_m2 / 1e6, 1) + " " + t.km2]]);
  }

  function hotPopup(p) {
    return rows([[t.f_class, t[p.class] || p.class], [t.f_count, p.count + " " +
                 t.unit_incidents], [t.f_z, fixed(p.z, 2)]]);
  }

  function cameraPopup(p) {
    return rows([[t.f_code, p.code], [t.f_status, STATUS[p.status] || p.status],
                 [t.f_server, p.server === "local" ? t.source_local
                   : t.camera_server.replace("{name}", p.server)],
                 [t.f_side, ...city(p.side)],
                 [t.f_bearing, Math.round(p.bearing)], [t.f_fov, Math.round(p.fov)],
                 [t.f_range_m, Math.round(p.range_m)]]);
  }

  function crossingPopup(p) {
    return rows([[t.f_road, p.road], [t.f_covered, p.covered ? t.covered : t.uncovered],
                 [t.f_covered_by, (p.covered_by || []).join(t.comma)],
                 [t.f_side, ...city(p.side)]]);
  }

  function planPopup(p) {
    return rows([[t.f_team, teamName(p), p.city], [t.f_length, fixed(p.length_m / 1000, 1) +
                 " " + t.km], [t.f_workload, fixed(p.workload, 1)], [t.f_hours, p.hours],
                 [t.f_stops, p.stops_reached + "/" + p.stops]]);
  }

  /* The source of a side's data in the answer ({server, peer, url, as_of, stale, error});
   * answers without `sources` come from this server. */
  function source(body, code) {
    return (body.sources || {})[code] || {server: "local"};
  }

  function fromPeer(body, code) {
    return source(body, code).server === "peer";
  }

  /* A time as people read it where the data live: "14:05", or "11-30 14:05" when not
   * today. */
  function clock(iso) {
    const when = iso ? new Date(iso) : null;
    if (!when || isNaN(when.getTime())) return "";
    const day = new Intl.DateTimeFormat("en-CA", {timeZone: config.tz, month: "2-digit",
                                                  day: "2-digit"});
    const time = new Intl.DateTimeFormat("en-GB", {timeZone: config.tz, hour: "2-digit",
                                                   minute: "2-digit", hourCycle: "h23"})
      .format(when);
    return day.format(when) === day.format(new Date()) ? time : day.format(when) + " " + time;
  }

  function asOf(iso) {
    const time = clock(iso);
    return time ? " · " + t.as_of.replace("{time}", time) : "";
  }

  /* One line of the sources: the side's swatch (dashed for a peer) and its text. */
  function sourceLine(colour, dashed, text, className) {
    const row = document.createElement("div");
    row.className = className;
    if (colour) {
      const swatch = document.createElement("span");
      swatch.className = "sg-swatch";
      swatch.style.background = colour;
      if (dashed) swatch.style.border = "1px dashed #333";  /* as in the key */
      row.append(swatch, document.createTextNode(" "));
    }
    row.append(document.createTextNode(text));
    return row;
  }

  /* Where each side's data came from and as of when; a warning when the partner's side
   * is an old copy ("stale") or missing. */
  function sources(body) {
    const box = document.getElementById("sg-sources");
    const head = document.createElement("div");
    head.className = "sg-legend-title";
    head.textContent = t.legend_sources;
    const codes = [body.a, body.b];
    const lines = [head];
    const peered = codes.some(code => fromPeer(body, code));
    if (!peered) {
      const stamp = codes.map(code => source(body, code).as_of).find(Boolean);
      lines.push(sourceLine(null, false, t.both_local + asOf(stamp), "sg-source"));
    }
    for (const [i, code] of (peered ? codes : []).entries()) {
      const s = source(body, code);
      const where = s.server === "peer"
        ? t.source_peer.replace("{name}", s.peer).replace("{url}", s.url) : t.source_local;
      lines.push(sourceLine(SIDES[i], s.server === "peer", t.side_of.replace(
        "{name}", city(code)[0]) + t.colon + where + asOf(s.as_of), "sg-source"));
      if (s.server === "peer" && (s.stale || !s.as_of)) {
        const warning = s.as_of ? t.stale_cache.replace("{time}", clock(s.as_of))
          : t.no_answer.replace("{error}", (s.error || "?").replace(/[.。]\s*$/, ""));
        const line = sourceLine(null, false, "⚠ " + warning, "sg-source sg-source-warn");
        line.setAttribute("role", "alert");
        if (s.as_of && s.error) line.title = s.error;
        lines.push(line);
      }
      const shared = s.server === "peer" && s.as_of ? s.incidents : null;
      if (shared === "cells" || shared === "none") {
        const note = sourceLine(null, false, "ⓘ " + t["incidents_" + shared],
                                "sg-source sg-source-note");
        if (s.error) note.title = s.error;
        lines.push(note);
      }
    }
    box.replaceChildren(...lines);
  }

  /* The partner's server the cameras came from, by name (null: all from this one). */
  function cameraPeer(body) {
    const peer = [body.a, body.b].map(code => source(body, code)).find(
      s => s.server === "peer");
    return peer ? peer.peer : null;
  }

  /* The key: which side is which city, the border, the crossings, the other layers; with
   * a partner's server, its cameras (hollow) apart from ours. */
  function key(body) {
    const peer = cameraPeer(body);
    const cameras = peer ? [[t.camera_ours, CAMERA], [t.camera_theirs.replace(
      "{name}", peer), CAMERA, false, "sg-key-camera-peer"]] : [[t.camera, CAMERA]];
    state.key = [
      [t.legend_sides, [body.a, body.b].map((code, i) => [
        t.side_of.replace("{name}", city(code)[0]), SIDES[i], fromPeer(body, code)]).concat(
        [[t.border_line, "#222", true]])],
      [t.legend_crossings, [[t.covered, CROSSING.covered], [t.uncovered, CROSSING.uncovered]]],
      [t.legend_other, [[t.hot_cell_key, "#d7191c"], [t.key_area, "#b15928"]].concat(
        cameras.map(([label, colour, dashed, kind]) => [label, colour, dashed,
                                                         kind || "sg-key-camera"]))]];
    drawKey(state.key);
  }

  /* The key's sections drawn (safegridTools' legend); swatches of entries naming a class
   * (fourth item) take it: the cameras' round ones. */
  function drawKey(sections) {
    legend(sections);
    const swatches = document.querySelectorAll("#sg-legend .sg-swatch");
    sections.flatMap(([, entries]) => entries).forEach((entry, i) => {
      if (entry[3] && swatches[i]) swatches[i].classList.add(entry[3]);
    });
  }

  /* The key with the teams of a plan added, each in its colour. */
  function teamKey(data) {
    const teams = data.features.filter(f => f.properties.kind === "sector")
      .map(f => [teamName(f.properties), teamColour(f.properties)]);
    drawKey(state.key.concat([[t.legend_teams, teams]]));
  }

  /* The width each side in metres, or null (and the reason shown) when unusable. */
  function width() {
    const metres = Number(value("sg-width"));
    if (value("sg-width") !== "" && metres > 0 && metres <= config.maxWidth) return metres;
    message(t.refused + t.colon + t.width_rule.replace("{max}", config.maxWidth), "error");
    return null;
  }

  /* B offers only the neighbours of the city chosen as A. */
  function offerNeighbours() {
    const b = document.getElementById("sg-b");
    const keep = b.value;
    b.replaceChildren(...(config.neighbours[value("sg-a")] || []).map(([code, name]) => {
      const option = new Option(name + " (" + code + ")", code);
      option.selected = code === keep;
      return option;
    }));
  }

  function teamColour(p) {
    const offset = p.city === state.border.a ? 0 : 4;
    return TEAMS[(offset + p.team - 1) % TEAMS.length];
  }

  /* The cameras that see into the zone, from the answer: ours filled, a partner
   * server's hollow with a darker outline; how many. */
  function cameras(body) {
    const found = body.cameras || {type: "FeatureCollection", features: []};
    L.geoJSON(found, {
      pointToLayer: (f, at) => f.properties.server === "local"
        ? L.circleMarker(at, {radius: 4, color: CAMERA, weight: 1, fillColor: CAMERA,
                              fillOpacity: 0.85, className: "sg-camera"})
        : L.circleMarker(at, {radius: 5, color: "#b35806", weight: 2, fillColor: "#fff",
                              fillOpacity: 0.9, className: "sg-camera sg-camera-peer"}),
      onEachFeature: (f, layer) => layer.bindPopup(cameraPopup(f.properties)),
    }).addTo(marks);
    return found.features.length;
  }

  async function show() {
    const metres = width();
    if (metres === null) return;
    message(t.running);
    const params = new URLSearchParams({a: value("sg-a"), b: value("sg-b"),
                                        width: metres});
    const result = await call("/api/border?" + params.toString());
    if (!result.ok) { refused(result); return; }
    const body = result.data;
    state.border = body;
    if ([body.a, body.b].sort().join() !== outlined) outline.clearLayers();
    zone.clearLayers();
    marks.clearLayers();
    plan.clearLayers();
    missed.clearLayers();
    missedList.innerHTML = "";
    L.geoJSON(body.zone, {
      style: f => {
        const colour = SIDES[f.properties.side === body.a ? 0 : 1];
        const peer = fromPeer(body, f.properties.side);
        return {color: colour, weight: peer ? 2 : 1, dashArray: peer ? "6 4" : null,
                fillColor: colour, fillOpacity: 0.12};
      },
      onEachFeature: (f, layer) => layer.bindPopup(sidePopup(f.properties)),
    }).addTo(zone);
    L.geoJSON(body.line, {style: {color: "#222", weight: 3, dashArray: "8 6"}}).addTo(zone);
    L.geoJSON(body.hot_cells, {
      style: {color: "#d7191c", weight: 0.5, fillColor: "#d7191c", fillOpacity: 0.35},
      onEachFeature: (f, layer) => layer.bindPopup(hotPopup(f.properties)),
    }).addTo(zone);
    L.geoJSON(body.key_areas, {
      style: {color: "#b15928", weight: 1.5, fillOpacity: 0.2},
      pointToLayer: (f, at) => L.circleMarker(at, {radius: 4, color: "#b15928"}),
      onEachFeature: (f, layer) => layer.bindPopup(rows([
        [t.f_name, f.properties.name], [t.f_side, ...city(f.properties.side)]])),
    }).addTo(marks);
    const seen = cameras(body);
    L.geoJSON(body.crossings, {
      pointToLayer: (f, at) => L.circleMarker(at, {
        radius: 7, weight: 2, color: "#fff", fillOpacity: 1,
        fillColor: CROSSING[f.properties.covered ? "covered" : "uncovered"]}),
      onEachFeature: (f, layer) => layer.bindPopup(crossingPopup(f.properties)),
    }).addTo(marks);
    map.fitBounds(zone.getBounds());
    const c = body.coverage;
    document.getElementById("sg-summary").innerHTML =
      "<b>" + esc(t.length) + " " + (body.length_m / 1000).toFixed(1) + " " + esc(t.km) +
      "</b><br>" + c.crossings + " " + esc(t.crossings) + t.colon +
      '<span style="color:#1a9641">' + (c.crossings - c.uncovered_crossings) + " " +
      esc(t.covered) + '</span>, <span style="color:#d7191c">' + c.uncovered_crossings +
      " " + esc(t.uncovered) + "</span><br>" + body.incidents.total + " " +
      esc(t.incidents) + " · " + body.hot_cells.features.length + " " + esc(t.hot_cells) +
      " · " + body.key_areas.features.length + " " + esc(t.key_areas) + " · " + seen + " " +
      esc(t.cameras);
    key(body);
    sources(body);
    message(t.show + t.colon + city(body.a)[0] + " / " + city(body.b)[0], "ok");
  }

  async function planPatrols() {
    if (!state.border) await show();
    if (!state.border) return;
    const metres = width();
    if (metres === null) return;
    message(t.running);
    const teams = {};
    teams[state.border.a] = Number(value("sg-teams-a"));
    teams[state.border.b] = Number(value("sg-teams-b"));
    const result = await call("/api/border/patrols", {
      a: state.border.a, b: state.border.b, width: metres, teams});
    if (!result.ok) { planRefused(result); return; }
    state.plan = result.data;
    plan.clearLayers();
    L.geoJSON(result.data, {
      style: f => ({color: teamColour(f.properties),
                    weight: f.properties.kind === "sector" ? 8 : 3,
                    opacity: f.properties.kind === "sector" ? 0.55 : 0.95,
                    dashArray: f.properties.kind === "route" ? "6 4" : null}),
      onEachFeature: (f, layer) => layer.bindPopup(planPopup(f.properties)),
    }).addTo(plan);
    teamKey(result.data);
    const unreached = showUnreached(result.data);
    sheet(result.data);
    document.getElementById("sg-print").disabled = false;
    message(t.plan + t.colon + result.data.summary.sectors + " " + t.sector + t.comma +
            t.balance + " " + result.data.summary.balance + t.comma + unreached + " " +
            t.unreached_stops, unreached ? "ok sg-warn" : "ok");
  }

  /* A refused plan; when the partner's server was the reason (409, 502) its words are
   * shown in Chinese too: they name the partner and what went wrong. */
  function planRefused(result) {
    const reason = (result.data || {}).error || "";
    const peer = result.status === 409 || result.status === 502;
    message(errorText(result) + (peer && reason && config.lang !== "en"
      ? "（" + reason + "）" : ""), "error");
  }

  /* Why a stop was not reached, in the page's language: "sector end: nearest road…". */
  function why(stop, parameters) {
    const values = {distance: stop.distance_m === null ? "?" : Math.round(stop.distance_m),
                    reach: parameters.reach_m, detour: parameters.detour_m};
    return t["stop_" + stop.kind] + t.colon +
      t["why_" + stop.reason].replace(/\{(\w+)\}/g, (all, name) => values[name]);
  }

  function teamName(p) {
    return city(p.city)[0] + " #" + p.team;
  }

  /* Ring each team's unreached stops on the map and list them; how many there are. */
  function showUnreached(data) {
    missed.clearLayers();
    const items = [];
    for (const f of data.features.filter(g => g.properties.kind === "sector")) {
      const p = f.properties;
      for (const stop of p.unreached) {
        const text = why(stop, data.parameters);
        const marker = L.circleMarker([stop.lat, stop.lon], {
          radius: 10, color: teamColour(p), weight: 3, dashArray: "4 3", fillColor: "#fff",
          fillOpacity: 0.7, className: "sg-unreached-stop"})
          .bindPopup("<b>" + esc(t.unreached) + "</b><br>" + esc(teamName(p)) + "<br>" +
                     esc(text))
          .addTo(missed);
        const item = document.createElement("li");
        const go = document.createElement("button");
        go.type = "button";
        go.className = "sg-unreached-item";
        go.textContent = teamName(p) + " · " + text;
        go.addEventListener("click", () => {
          map.setView([stop.lat, stop.lon], Math.max(map.getZoom(), 14), {animate: false});
          marker.openPopup();
        });
        item.append(go);
        items.push(item);
      }
    }
    missedList.innerHTML = "";
    if (items.length) {
      const title = document.createElement("b");
      title.textContent = t.unreached + " (" + items.length + ")";
      const list = document.createElement("ul");
      list.append(...items);
      missedList.append(title, list);
    }
    return items.length;
  }

  function sheet(data) {
    const rows = data.features.filter(f => f.properties.kind === "sector").map(f => {
      const p = f.properties;
      const route = data.features.find(g => g.properties.kind === "route" &&
        g.properties.city === p.city && g.properties.team === p.team);
      return "<tr><td><span class='sg-team-chip' style='background:" + teamColour(p) +
        "'></span> " + esc(teamName(p)) + "</td><td>" +
        (p.from_m / 1000).toFixed(1) + "–" + (p.to_m / 1000).toFixed(1) + " km</td><td>" +
        p.crossings + " (" + p.uncovered + " " + esc(t.uncovered) + ")</td><td>" +
        p.workload + "</td><td>" + esc(p.hours) + "</td><td>" +
        (route ? (route.properties.length_m / 1000).toFixed(1) + " km" + t.comma
               : esc(t.no_route) + t.comma) + p.stops_reached + "/" + p.stops +
        p.unreached.map(s => "<br>" + esc(why(s, data.parameters))).join("") + "</td></tr>";
    });
    document.getElementById("sg-plan-sheet").innerHTML =
      "<h2>" + esc(t.plan_title) + t.colon + esc(city(data.parameters.a)[0]) + " / " +
      esc(city(data.parameters.b)[0]) + "</h2><p>" + esc(t.width) + " " + data.parameters.width +
      " · " + esc(t.balance) + " " + data.summary.balance + "</p><table><tr><th>" +
      esc(t.team) + "</th><th>" + esc(t.sector) + "</th><th>" + esc(t.crossings) +
      "</th><th>" + esc(t.workload) + "</th><th>" + esc(t.hours) + "</th><th>" +
      esc(t.route) + " (" + esc(t.stops) + ")</th></tr>" + rows.join("") + "</table>";
  }

  document.getElementById("sg-a").addEventListener("change", offerNeighbours);
  document.getElementById("sg-show").addEventListener("click", show);
  const planButton = document.getElementById("sg-plan");
  if (planButton) planButton.addEventListener("click", planPatrols);
  document.getElementById("sg-print").addEventListener("click", () => window.print());
  show();
}
