// The basemaps of every map page: the offline one drawn from this server's layers
// (/tiles/basemap, vector tiles drawn by Leaflet.VectorGrid) and a notice, in the page
// language, when a remote basemap (SAFEGRID_BASEMAPS) fails to load.
"use strict";

var safegridBasemap = (function () {
  const PAPER = "#f2efe9";
  // class -> [colour, width at zoom 15]
  const ROADS = {
    motorway: ["#e8927c", 6], arterial: ["#f2b360", 5], collector: ["#d8c37c", 3.5],
    local: ["#b9b0a4", 2], path: ["#c8c0b4", 1],
  };
  // level -> [colour, width, dash]
  const BOUNDARIES = {
    province: ["#6a3d9a", 3, "10 5"], city: ["#7b3294", 3, "8 4"],
    district: ["#9e6bb0", 2, "6 4"], street: ["#a58fb8", 1.2, "4 3"],
    community: ["#b9aac6", 0.8, "2 3"], village: ["#b9aac6", 0.8, "2 3"],
  };
  const LABEL_SIZE = { province: 17, city: 16, district: 14, street: 13 };

  function roadStyle(props, zoom) {
    const s = ROADS[props.class] || ROADS.local;
    const weight = Math.max(0.6, s[1] * Math.pow(1.4, zoom - 15));
    return { color: s[0], weight: weight, opacity: 1, lineCap: "round",
             dashArray: props.class === "path" ? "3 3" : null };
  }

  function boundaryStyle(props) {
    const s = BOUNDARIES[props.level] || BOUNDARIES.community;
    return { color: s[0], weight: s[1], opacity: 0.9, dashArray: s[2], fill: false };
  }

  function placeStyle(props) {
    return { label: props.name || "", labelSize: LABEL_SIZE[props.level] || 12,
             radius: 0, stroke: false, fill: false };
  }

  // VectorGrid draws points as circles; a place is drawn as its name instead.
  const LabelledTile = L.Canvas.Tile.extend({
    _updateCircle: function (layer) {
      if (!layer.options.label) {
        return L.Canvas.Tile.prototype._updateCircle.call(this, layer);
      }
      if (!this._drawing) { return; }
      const ctx = this._ctx, p = layer._point;
      ctx.font = layer.options.labelSize + "px sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.lineWidth = 3;
      ctx.strokeStyle = "rgba(255,255,255,0.9)";
      ctx.strokeText(layer.options.label, p.x, p.y);
      ctx.fillStyle = "#333333";
      ctx.fillText(layer.options.label, p.x, p.y);
      this._drawnLayers[layer._leaflet_id] = layer;
    },
  });

  function offline(config) {
    const layer = L.vectorGrid.protobuf(config.url, {
      rendererFactory: function (coords, size, options) {
        return new LabelledTile(coords, size, options);
      },
      vectorTileLayerStyles: {
        buildings: { fill: true, fillColor: "#d9d0c9", fillOpacity: 1, color: "#c4b8ad",
                     weight: 0.5 },
        roads: roadStyle, boundaries: boundaryStyle, places: placeStyle,
      },
      interactive: false, maxNativeZoom: 18, maxZoom: 22,
      attribution: config.attribution, fetchOptions: { credentials: "same-origin" },
    });
    // Paper under the offline basemap; Leaflet's grey again under a remote one.
    layer.on("add", function () { layer._map.getContainer().style.background = PAPER; });
    layer.on("remove", function () { layer._map.getContainer().style.background = ""; });
    return layer;
  }

  function notice(map) {
    let box = map.getContainer().querySelector(".sg-basemap-notice");
    if (!box) {
      box = L.DomUtil.create("div", "sg-basemap-notice", map.getContainer());
      box.setAttribute("role", "alert");
      Object.assign(box.style, {
        position: "absolute", bottom: "28px", left: "50%", transform: "translateX(-50%)",
        zIndex: 1000, maxWidth: "80%", padding: "8px 12px", background: "#fff3cd",
        border: "1px solid #d39e00", borderRadius: "4px", color: "#5c4400",
        font: "14px sans-serif", boxShadow: "0 1px 4px #0004", display: "none",
      });
    }
    return box;
  }

  // layers: the remote base layers, in the order of config.names.
  function watch(map, layers, config) {
    layers.forEach(function (layer, i) {
      layer.on("tileerror", function () {
        if (!map.hasLayer(layer)) { return; }
        const box = notice(map);
        box.textContent = config.failed.replace("{name}", config.names[i]);
        box.style.display = "block";
      });
    });
    map.on("baselayerchange", function () { notice(map).style.display = "none"; });
  }

  return { offline: offline, watch: watch };
})();
