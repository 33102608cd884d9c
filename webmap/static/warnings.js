/* Risk warnings (风险预警) on a map page (/map and /map/analysis): a button with the
 * count of the jurisdiction's open warnings (not acknowledged, zone not ended), a panel
 * listing them newest first (kind, message in the page language, when raised, until
 * when), each with a button that moves the map to its place and outlines it, and, for
 * police and admins, one that acknowledges it (POST /api/warnings/{id}/ack): the item
 * then says by whom and when, and leaves the count. A refusal is said in the panel
 * with the server's reason. Esc closes the panel. The list is read again every five
 * minutes while the panel is closed. The markup comes with the page
 * (webmap.mapview.warnings_markup). */
/* exported safegridWarnings */
function safegridWarnings(map, config) {
  "use strict";
  const t = config.text;
  const REFRESH_MS = 5 * 60 * 1000;
  const PLACE = {color: "#b2182b", weight: 2, dashArray: "5 4", fillColor: "#ef8a62",
                 fillOpacity: 0.15};
  const PICKED = {color: "#67001f", weight: 5, dashArray: null, fillColor: "#ef8a62",
                  fillOpacity: 0.35};
  const state = {busy: 0, features: [], layers: new Map(), picked: null, acked: new Set()};
  const tools = safegridTools(config, state);
  const box = document.getElementById("sg-warnings");
  const toggle = document.getElementById("sg-warnings-toggle");
  const panel = document.getElementById("sg-warnings-panel");
  const list = document.getElementById("sg-warnings-list");
  const status = document.getElementById("sg-warnings-status");
  const count = document.getElementById("sg-warnings-count");
  const places = L.featureGroup().addTo(map);
  const stamp = new Intl.DateTimeFormat("en-GB", {
    timeZone: config.tz, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23"});
  window.safegridWarningsState = {map, places, state};

  /* "2026-06-05 08:00" in the city's time zone */
  function when(iso) {
    if (!iso) return "";
    const p = {};
    for (const part of stamp.formatToParts(new Date(iso))) p[part.type] = part.value;
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute;
  }

  function say(text, kind) {
    status.textContent = text;
    status.className = kind || "";
  }

  /* A refusal: the page's words for it and the server's reason (its own words, small). */
  function refused(result) {
    say(tools.errorText(result), "error");
    const data = result.data || {};
    const reason = data.error || data.message;
    if (reason && config.lang !== "en") {
      const code = document.createElement("small");
      code.className = "sg-code";
      code.textContent = " " + reason;
      status.append(code);
    }
  }

  function open() {
    return state.features.filter(f => !state.acked.has(f.id));
  }

  function showCount() {
    const n = open().length;
    count.textContent = String(n);
    count.classList.toggle("sg-none", n === 0);
    toggle.setAttribute("aria-label", t.button + t.colon + t.count_of.replace("{n}", n));
    toggle.title = t.count_of.replace("{n}", n);
  }

  function draw() {
    places.clearLayers();
    state.layers.clear();
    for (const f of state.features) {
      const layer = L.geoJSON(f, {
        style: () => PLACE,
        pointToLayer: (_f, at) => L.circleMarker(at, {radius: 8}),
      });
      layer.bindPopup(() => popup(f), {autoPanPaddingTopLeft: L.point(10, clearOfHeader())});
      state.layers.set(f.id, layer);
      layer.addTo(places);
    }
  }

  /* How far down a popup must stay to be clear of the overview's header. */
  function clearOfHeader() {
    const header = document.getElementById("sg-header");
    if (!header) return 10;
    return header.getBoundingClientRect().bottom -
      map.getContainer().getBoundingClientRect().top + 10;
  }

  function popup(f) {
    const p = f.properties;
    const html = document.createElement("div");
    const head = document.createElement("b");
    head.textContent = t["kind_" + p.kind] || p.kind;
    const text = document.createElement("div");
    text.textContent = message(p);
    html.append(head, text);
    return html;
  }

  function message(p) {
    return config.lang === "en" ? p.message_en : p.message_zh;
  }

  function item(f) {
    const p = f.properties;
    const li = document.createElement("li");
    li.className = "sg-warning";
    li.dataset.id = String(f.id);
    li.dataset.kind = p.kind;
    const kind = document.createElement("div");
    kind.className = "sg-warning-kind";
    kind.textContent = t["kind_" + p.kind] || p.kind;
    const text = document.createElement("div");
    text.className = "sg-warning-message";
    text.textContent = message(p);
    const times = document.createElement("div");
    times.className = "sg-warning-when";
    times.textContent = t.raised + " " + when(p.created_at) +
      (p.until ? t.comma + t.until + " " + when(p.until) : "");
    const actions = document.createElement("div");
    actions.className = "sg-warning-actions";
    const go = document.createElement("button");
    go.type = "button";
    go.className = "sg-warning-go";
    go.textContent = t.go;
    go.addEventListener("click", () => show(f.id));
    actions.append(go);
    if (p.acknowledged_at) {
      actions.append(acknowledged(p));
    } else if (config.canAck) {
      const ack = document.createElement("button");
      ack.type = "button";
      ack.className = "sg-warning-ack";
      ack.textContent = t.ack;
      ack.addEventListener("click", () => acknowledge(f, li, ack));
      actions.append(ack);
    }
    li.append(kind, text, times, actions);
    return li;
  }

  function acknowledged(p) {
    const done = document.createElement("span");
    done.className = "sg-warning-acked";
    done.textContent = t.acked.replace("{who}", p.acknowledged_by)
      .replace("{when}", when(p.acknowledged_at));
    return done;
  }

  function fill() {
    list.innerHTML = "";
    for (const f of state.features) list.append(item(f));
    if (!state.features.length) say(t.none);
  }

  /* Padding that keeps a place out from under the open panel: on its right (a wide
   * screen, the panel on the left) or above it (a phone, the panel below); and left of
   * the analysis map's side panel. */
  function besidePanel() {
    const m = map.getContainer().getBoundingClientRect();
    const size = map.getSize();
    const side = document.getElementById("sg-panel");
    const right = side ? m.right - side.getBoundingClientRect().left : 0;
    const padding = {paddingBottomRight: [right > 0 && right < size.x / 3 ? right : 0, 0]};
    if (panel.hidden) return padding;
    const p = panel.getBoundingClientRect();
    if (p.right - m.left < size.x / 2) padding.paddingTopLeft = [p.right - m.left, 0];
    else if (p.top - m.top > size.y / 3) padding.paddingBottomRight[1] = m.bottom - p.top;
    return padding;
  }

  /* The map on the warning's place, its outline bold, its popup open. */
  function show(id) {
    const layer = state.layers.get(id);
    if (!layer) return;
    if (state.picked) state.picked.setStyle(PLACE);
    state.picked = layer;
    layer.setStyle(PICKED);
    layer.bringToFront();
    map.flyToBounds(layer.getBounds(), {maxZoom: Math.max(map.getZoom(), 16), duration: 0.5,
                                        ...besidePanel()});
    for (const li of list.querySelectorAll(".sg-warning")) {
      li.classList.toggle("sg-picked", li.dataset.id === String(id));
    }
    map.once("moveend", () => layer.openPopup(layer.getBounds().getCenter()));
  }

  async function acknowledge(f, li, button) {
    button.disabled = true;
    const result = await tools.call("/api/warnings/" + f.id + "/ack", {});
    if (!result.ok) {
      button.disabled = false;
      refused(result);
      return;
    }
    state.acked.add(f.id);
    f.properties = result.data.properties;
    li.classList.add("sg-done");
    button.replaceWith(acknowledged(f.properties));
    say(t.done.replace("{n}", open().length), "ok");
    showCount();
  }

  async function load() {
    if (state.loading) return;
    state.loading = true;
    try {
      const result = await tools.call("/api/warnings?open=true&jurisdiction=" +
                                      encodeURIComponent(config.jurisdiction));
      if (!result.ok) {
        refused(result);
        return;
      }
      state.acked.clear();
      state.features = result.data.features;
      draw();
      fill();
      if (state.features.length) say("");
      if (result.data.withheld) {
        say(t.withheld.replace("{n}", result.data.withheld));
      }
      showCount();
      box.dataset.loaded = "true";
    } finally {
      state.loading = false;
    }
  }

  function setOpen(on) {
    const header = document.getElementById("sg-header");
    if (on && header && !window.matchMedia("(max-width: 600px)").matches) {
      panel.style.top = Math.round(header.getBoundingClientRect().bottom + 6) + "px";
    }  // below the overview's header however many lines it takes
    panel.hidden = !on;
    toggle.setAttribute("aria-expanded", on ? "true" : "false");
    if (on) {
      (list.querySelector("button") || document.getElementById("sg-warnings-close")).focus();
    } else {
      toggle.focus();
    }
  }

  toggle.addEventListener("click", () => setOpen(panel.hidden));
  document.getElementById("sg-warnings-close").addEventListener("click", () => setOpen(false));
  // Esc in the panel (or with nothing focused) closes it, and the place's popup with it
  document.addEventListener("keydown", event => {
    if (event.key !== "Escape" || panel.hidden) return;
    if (box.contains(event.target) || event.target === document.body) {
      event.preventDefault();
      map.closePopup();
      setOpen(false);
    }
  });
  load();
  // not while the panel is open: the list would change under the officer's hand
  window.setInterval(() => { if (panel.hidden) load(); }, REFRESH_MS);
}
