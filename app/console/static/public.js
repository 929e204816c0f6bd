// The public page's map: the streets' outlines and the listed filter's tickets, by
// status. The list and the figures work without it.
(function () {
  "use strict";

  var COLOURS = { accepted: "#7048e8", in_progress: "#b35900", resolved: "#2b8a3e", closed: "#2b8a3e" };

  function text(value) {
    var span = document.createElement("span");
    span.textContent = value;
    return span;
  }

  function load(url, then) {
    fetch(url, { headers: { Accept: "application/geo+json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { then(data); } });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("map");
    if (!el || !window.L) { return; }
    var map = L.map(el, { maxZoom: 19, minZoom: 9 }).setView([31.22, 121.42], 13);
    map.createPane("streets").style.zIndex = 350;
    var streets = L.geoJSON(null, {
      pane: "streets",
      style: function () { return { color: "#364fc7", weight: 1.5, fillOpacity: 0.03 }; },
      onEachFeature: function (f, layer) { layer.bindTooltip(text(f.properties.name), { sticky: true }); }
    }).addTo(map);
    load(el.dataset.streets, function (data) {
      streets.addData(data);
      if (data.features.length) { map.fitBounds(streets.getBounds(), { padding: [8, 8], animate: false }); }
    });
    load(el.dataset.points, function (data) {
      L.geoJSON(data, {
        pointToLayer: function (f, latlng) {
          var p = f.properties;
          return L.circleMarker(latlng, { radius: 7, weight: 1, color: "#fff", fillColor: COLOURS[p.status] || "#495057", fillOpacity: 0.9 })
            .bindTooltip(text(p.ref + " · " + p.category))
            .on("click", function () { window.location.assign(p.url); });
        }
      }).addTo(map);
      el.dataset.loaded = String(data.features.length);
    });
  });
})();
