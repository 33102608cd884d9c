// The overview map (/map): which overlays are on (remembered in this browser), their
// features fetched for the view (/map/layers/{source}?bbox=) once they are on and again
// when the map moves out of what was fetched or zooms in past its detail, a colour
// swatch for each in the layer control, grid labels thinned so none overlaps another,
// and a layer control that starts collapsed on a phone.
/* exported safegridOverview */
var safegridOverview = (function () {
  "use strict";
  var STORE = "safegrid.overview.layers";
  var PHONE = "(max-width: 600px)";
  var PAD = 0.5;  // fetch half a view more on each side, so a small pan needs nothing new

  function remembered() {
    try {
      return JSON.parse(window.localStorage.getItem(STORE)) || {};
    } catch {
      return {};  // storage refused or unreadable: the defaults
    }
  }

  function remember(map, layers, overlays) {
    var state = remembered();
    overlays.forEach(function (o, i) { state[o.key] = map.hasLayer(layers[i]); });
    try {
      window.localStorage.setItem(STORE, JSON.stringify(state));
    } catch { /* storage refused: the choice lasts this page only */ }
  }

  function controlOptions(options) {
    options.collapsed = window.matchMedia(PHONE).matches;
    return options;
  }

  function swatch(overlay) {
    var span = document.createElement("span");
    span.className = "sg-swatch";
    if (overlay.colour) {
      span.style.backgroundColor = overlay.colour;
      span.dataset.colour = overlay.colour;
    } else {
      span.className += " sg-swatch-heat";
    }
    return span;
  }

  // Leaflet redraws the control's rows whenever a layer comes or goes: each new row
  // gets its swatch before the name.
  function addSwatches(control, layers, overlays) {
    var addItem = control._addItem;
    control._addItem = function (obj) {
      var row = addItem.call(this, obj);
      var i = layers.indexOf(obj.layer);
      if (i >= 0) {
        var name = row.querySelector("span span") || row.querySelector("span");
        name.parentNode.insertBefore(swatch(overlays[i]), name);
        row.dataset.key = overlays[i].key;
      }
      return row;
    };
    control._update();
  }

  function labelMarker(label) {
    var text = document.createElement("span");
    text.textContent = label.text;
    return L.marker([label.lat, label.lng], {
      icon: L.divIcon({className: "sg-grid-label", html: text, iconSize: null}),
      interactive: false, keyboard: false,
    });
  }

  function overlaps(a, b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  }

  // Most households first: a label is shown unless it would cover one already shown.
  function thin(markers) {
    var kept = [];
    markers.forEach(function (marker) {
      var el = marker.getElement();
      if (el) el.style.visibility = "";
    });
    markers.forEach(function (marker) {
      var el = marker.getElement();
      if (!el) return;
      var box = el.firstChild.getBoundingClientRect();
      var clash = kept.some(function (other) { return overlaps(box, other); });
      el.style.visibility = clash ? "hidden" : "";
      if (!clash) kept.push(box);
    });
  }

  // The grids' labels, from the fetched grids: a point inside each and its text.
  function gridLabels(features) {
    return features.map(function (f) {
      var p = f.properties;
      return {lat: p._lat, lng: p._lng, n: p.households || 0, text: p._label};
    }).sort(function (a, b) { return b.n - a.n; });
  }

  // A feature's tooltip: its fields in a table of text, no value becomes markup.
  function tooltip(overlay) {
    return function (layer) {
      var table = L.DomUtil.create("table");
      overlay.fields.forEach(function (field, i) {
        var row = L.DomUtil.create("tr", "", table);
        var value = layer.feature.properties[field];
        L.DomUtil.create("th", "", row).textContent = overlay.aliases[i];
        L.DomUtil.create("td", "", row).textContent = value == null ? ""
          : typeof value === "object" ? JSON.stringify(value) : String(value);
      });
      return table;
    };
  }

  function geoJson(overlay, features) {
    var s = overlay.style;
    var style = {color: s.color, weight: s.weight == null ? 1 : s.weight,
                 fillOpacity: s.fillOpacity == null ? 0.2 : s.fillOpacity};
    if (s.dashArray) style.dashArray = s.dashArray;
    return L.geoJSON({type: "FeatureCollection", features: features}, {
      style: function () { return style; },
      pointToLayer: function (f, at) {
        return L.circleMarker(at, {radius: s.radius || 4, color: s.color, fill: true,
                                   fillOpacity: 0.8, weight: 1});
      },
      onEachFeature: function (f, layer) {
        layer.bindTooltip(tooltip(overlay), {sticky: true});
      },
    });
  }

  function start(map, control, layers, config) {
    var overlays = config.overlays;
    var cityBounds = L.latLngBounds(config.bounds);
    var sources = {};
    var pending = 0;
    map.sgOverview = {pending: 0, fetched: 0};
    overlays.forEach(function (o, i) {
      var source = sources[o.source] = sources[o.source] || {name: o.source, members: [],
                                                              loaded: null, asked: null};
      source.members.push(i);
      o.drawn = null;
    });
    var heat = overlays.findIndex(function (o) { return o.source === "heat"; });
    if (heat >= 0) {  // there from the start, so that ticking it shows its canvas at once
      overlays[heat].drawn = L.heatLayer([], overlays[heat].style.heatLayer).addTo(layers[heat]);
    }
    var gridLabelGroup = null;
    var gridMarkers = [];

    function wanted(source) {
      return source.members.some(function (i) { return map.hasLayer(layers[i]); });
    }

    // What the view needs: the part of it inside the city (null when it shows none).
    function need() {
      var view = map.getBounds();
      if (!view.intersects(cityBounds)) return null;
      return L.latLngBounds(
        [Math.max(view.getSouth(), cityBounds.getSouth()),
         Math.max(view.getWest(), cityBounds.getWest())],
        [Math.min(view.getNorth(), cityBounds.getNorth()),
         Math.min(view.getEast(), cityBounds.getEast())]);
    }

    function fresh(have, area, zoom, point) {
      return have && have.box.contains(area) && (point || zoom <= have.zoom + 1);
    }

    function draw(source, data) {
      source.members.forEach(function (i) {
        var o = overlays[i];
        if (o.source === "heat") {
          o.drawn.setLatLngs(data.points);
          return;
        }
        var features = o.category ? data.features.filter(function (f) {
          return f.properties.category === o.category;
        }) : data.features;
        var next = geoJson(o, features);
        if (o.drawn) layers[i].removeLayer(o.drawn);
        o.drawn = next.addTo(layers[i]);
        if (o.key === config.gridsKey) drawLabels(layers[i], data.features);
      });
    }

    function drawLabels(grids, features) {
      if (gridLabelGroup) grids.removeLayer(gridLabelGroup);
      gridMarkers = gridLabels(features).map(labelMarker);
      gridLabelGroup = L.layerGroup(gridMarkers);
      grids.addLayer(gridLabelGroup);
      updateLabels();
    }

    function updateLabels() {
      if (gridLabelGroup && map.hasLayer(gridLabelGroup)) thin(gridMarkers);
    }

    function refresh(source) {
      if (!wanted(source)) return;
      var area = need();
      var zoom = map.getZoom();
      var point = source.members.every(function (i) { return overlays[i].point; });
      if (!area || fresh(source.loaded, area, zoom, point) ||
          fresh(source.asked, area, zoom, point)) return;
      var box = map.getBounds().pad(PAD);
      if (box.contains(cityBounds)) box = cityBounds.pad(0.01);
      var asked = source.asked = {box: box, zoom: zoom};
      var params = new URLSearchParams({
        city: config.city, zoom: String(zoom), lang: config.lang,
        bbox: [box.getWest(), box.getSouth(), box.getEast(), box.getNorth()]
          .map(function (v) { return v.toFixed(6); }).join(",")});
      pending += 1;
      map.sgOverview.pending = pending;
      fetch(config.url + source.name + "?" + params, {credentials: "same-origin"})
        .then(function (response) {
          if (!response.ok) throw new Error(response.status + " " + response.statusText);
          return response.json();
        })
        .then(function (data) {
          if (source.asked !== asked) return;  // a newer view asked since
          source.loaded = asked;
          draw(source, data);
          map.sgOverview.fetched += 1;
        })
        .catch(function (error) {
          if (source.asked === asked) source.asked = null;
          window.console.warn("safegrid: " + source.name + " not loaded: " + error);
        })
        .finally(function () {
          pending -= 1;
          map.sgOverview.pending = pending;
        });
    }

    function refreshAll() {
      Object.keys(sources).forEach(function (name) { refresh(sources[name]); });
    }

    layers.forEach(function (layer, i) {
      layer.on("add", function () { refresh(sources[overlays[i].source]); });
    });
    var state = remembered();
    overlays.forEach(function (o, i) {
      var show = o.key in state ? state[o.key] : o.show;
      if (show) layers[i].addTo(map);
    });
    addSwatches(control, layers, overlays);
    map.on("moveend", refreshAll);
    map.on("zoomend moveend", updateLabels);
    var grids = overlays.findIndex(function (o) { return o.key === config.gridsKey; });
    if (grids >= 0) layers[grids].on("add", updateLabels);
    map.on("overlayadd overlayremove", function () {
      remember(map, layers, overlays);
    });
    map.sgLayerControl = control;
  }

  return {start: start, controlOptions: controlOptions};
})();
