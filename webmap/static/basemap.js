// The basemaps of every map page: the offline one drawn from this server's layers
// (/tiles/basemap, vector tiles drawn by Leaflet.VectorGrid), remote ones from
// SAFEGRID_BASEMAPS (a GCJ-02 one displayed shifted onto the WGS 84 features), and a
// notice, in the page language, when a remote basemap fails to load.
"use strict";

/* exported safegridBasemap */
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

  // VectorGrid draws a tile it could not fetch as an empty one and says nothing; the
  // offline basemap's tile requests are therefore watched (not changed) as they go out:
  // one that fails shows the notice while the offline basemap is on.
  function watchTiles(layer, config) {
    const pageFetch = window.fetch;
    const failed = function () {
      if (!layer._map) { return; }
      const box = notice(layer._map);
      box.textContent = config.failed;
      box.style.display = "block";
    };
    window.fetch = function (input) {
      const answer = pageFetch.apply(this, arguments);  // input and init, as they came
      if (String(input && input.url || input).indexOf("/tiles/basemap/") !== -1) {
        answer.then(function (r) { if (!r.ok) { failed(); } }, failed);
      }
      return answer;
    };
    layer.on("remove", function () {
      if (layer._map) { notice(layer._map).style.display = "none"; }
    });
  }

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
    watchTiles(layer, config);
    // Paper under the offline basemap; Leaflet's grey again under a remote one.
    layer.on("add", function () { layer._map.getContainer().style.background = PAPER; });
    layer.on("remove", function () { layer._map.getContainer().style.background = ""; });
    return layer;
  }

  // The GCJ-02 offset (degrees) of a WGS 84 point: the published forward formula, as in
  // geo/crs.py (a test compares the two); zero outside China.
  function gcj02Offset(lon, lat) {
    const A = 6378245.0, EE = 0.006693421622965943, PI = Math.PI;
    if (lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271) { return [0, 0]; }
    const x = lon - 105.0, y = lat - 35.0;
    let dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y
      + 0.2 * Math.sqrt(Math.abs(x))
      + (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0
      + (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0
      + (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    let dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y
      + 0.1 * Math.sqrt(Math.abs(x))
      + (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0
      + (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0
      + (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    const radlat = lat / 180.0 * PI;
    const magic = 1.0 - EE * Math.sin(radlat) ** 2, sqrtmagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrtmagic) * PI);
    dlon = (dlon * 180.0) / (A / sqrtmagic * Math.cos(radlat) * PI);
    return [dlon, dlat];
  }

  // Tiles of a GCJ-02 basemap, each moved by the offset at its centre, so that what
  // they show lies under the features (stored and drawn in WGS 84): at any zoom the
  // offset changes by well under a pixel across one tile.
  const Gcj02TileLayer = L.TileLayer.extend({
    _getTilePos: function (coords) {
      const pos = L.TileLayer.prototype._getTilePos.call(this, coords);
      const size = this.getTileSize();
      const centre = this._map.unproject(coords.scaleBy(size).add(size.divideBy(2)), coords.z);
      const d = gcj02Offset(centre.lng, centre.lat);
      const shown = this._map.project([centre.lat + d[1], centre.lng + d[0]], coords.z);
      return pos.add(this._map.project(centre, coords.z).subtract(shown)).round();
    },
  });

  function remote(url, options, crs) {
    return crs === "gcj02" ? new Gcj02TileLayer(url, options) : L.tileLayer(url, options);
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

  return { offline: offline, remote: remote, watch: watch, gcj02Offset: gcj02Offset };
})();
