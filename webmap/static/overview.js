// The overview map (/map): which overlays are on (remembered in this browser), a colour
// swatch for each in the layer control, grid labels thinned so none overlaps another,
// and a layer control that starts collapsed on a phone.
var safegridOverview = (function () {
  "use strict";
  var STORE = "safegrid.overview.layers";
  var PHONE = "(max-width: 600px)";

  function remembered() {
    try {
      return JSON.parse(window.localStorage.getItem(STORE)) || {};
    } catch (e) {
      return {};  // storage refused or unreadable: the defaults
    }
  }

  function remember(map, layers, overlays) {
    var state = remembered();
    overlays.forEach(function (o, i) { state[o.key] = map.hasLayer(layers[i]); });
    try {
      window.localStorage.setItem(STORE, JSON.stringify(state));
    } catch (e) { /* storage refused: the choice lasts this page only */ }
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

  function addLabels(map, grids, labels) {
    var markers = labels.map(labelMarker);
    var group = L.layerGroup(markers);
    grids.addLayer(group);
    var update = function () { if (map.hasLayer(group)) thin(markers); };
    map.on("zoomend moveend", update);
    grids.on("add", update);
    update();
  }

  function start(map, control, layers, config) {
    var state = remembered();
    config.overlays.forEach(function (o, i) {
      var show = o.key in state ? state[o.key] : o.show;
      if (show) layers[i].addTo(map);
    });
    addSwatches(control, layers, config.overlays);
    var grids = config.overlays.findIndex(function (o) { return o.key === config.gridsKey; });
    if (grids >= 0 && config.labels.length) addLabels(map, layers[grids], config.labels);
    map.on("overlayadd overlayremove", function () {
      remember(map, layers, config.overlays);
    });
    map.sgLayerControl = control;
  }

  return {start: start, controlOptions: controlOptions};
})();
