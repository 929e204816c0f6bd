// The console's behaviour: the maps, keyboard shortcuts, photo viewer, live SLA
// countdowns, and actions from the queue. Everything works without it but the map.
(function () {
  "use strict";

  var STATUS_COLOURS = {
    new: "#1c7ed6", accepted: "#7048e8", in_progress: "#e67700", resolved: "#2f9e44",
    closed: "#868e96", rejected: "#495057", duplicate: "#adb5bd"
  };
  var LATE = "#e03131";

  // Text for a tooltip: Leaflet takes a string as HTML, and names come from imports.
  function text(value) {
    var span = document.createElement("span");
    span.textContent = value;
    return span;
  }

  function csrfToken() {
    var headers = document.body.getAttribute("hx-headers");
    try { return JSON.parse(headers)["X-CSRF-Token"]; } catch (e) { return ""; }
  }

  function baseLayer(map, el) {
    var url = el.dataset.tiles;
    if (!url) { return; }
    var options = { attribution: el.dataset.tilesAttribution || "", maxZoom: 19 };
    if (el.dataset.tilesSubdomains) { options.subdomains = el.dataset.tilesSubdomains.split(""); }
    L.tileLayer(url, options).addTo(map);
  }

  // Areas in a pane of their own, under the tickets: a polygon never takes a ticket's click.
  function areaPane(map) {
    map.createPane("areas").style.zIndex = 350;
    return "areas";
  }

  function ticketMarker(feature, latlng) {
    var p = feature.properties;
    var marker = L.circleMarker(latlng, {
      radius: 7, weight: p.overdue ? 3 : 1, color: p.overdue ? LATE : "#ffffff",
      fillColor: STATUS_COLOURS[p.status] || "#333", fillOpacity: 0.9
    });
    marker.bindTooltip(text(p.ref + " · " + p.category + (p.overdue ? " ⚠" : "")));
    marker.on("click", function () { window.location.assign(p.url); });
    marker.feature = feature;
    return marker;
  }

  function queueMap() {
    var el = document.getElementById("map");
    if (!el || !window.L) { return; }
    var map = L.map(el, { maxZoom: 19, minZoom: 9 });
    baseLayer(map, el);
    map.setView([31.22, 121.42], 13);
    var areas = L.geoJSON(null, {
      pane: areaPane(map),
      style: function (f) {
        var street = f.properties.level === "street";
        return { color: street ? "#364fc7" : "#748ffc", weight: street ? 2 : 1, fill: !street, fillOpacity: 0.04 };
      },
      onEachFeature: function (f, layer) {
        var street = f.properties.level === "street";
        layer.bindTooltip(text(f.properties.name), street && document.body.dataset.district === "true"
          ? { permanent: true, direction: "center", className: "area-label" } : { sticky: true });
      }
    }).addTo(map);
    var clusters = L.markerClusterGroup ? L.markerClusterGroup({ maxClusterRadius: 40, animate: false }) : L.layerGroup();
    clusters.addTo(map);
    var state = { map: map, areas: areas, tickets: clusters, loaded: 0 };
    window.sentinelMap = state;

    function loadTickets(url) {
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
        clusters.clearLayers();
        var layer = L.geoJSON(data, { pointToLayer: ticketMarker });
        clusters.addLayers ? clusters.addLayers(layer.getLayers()) : layer.getLayers().forEach(function (m) { clusters.addLayer(m); });
        state.loaded = data.features.length;
        el.dataset.ticketsLoaded = String(data.features.length);
      });
    }
    fetch(el.dataset.areas, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
      areas.addData(data);
      if (data.features.length) { map.fitBounds(areas.getBounds(), { padding: [10, 10], animate: false }); }
      el.dataset.areasLoaded = String(data.features.length);
    });
    loadTickets(el.dataset.tickets);
    document.body.addEventListener("htmx:afterSwap", function (event) {
      var results = document.getElementById("results");
      if (results && event.target === results || (results && results.contains(event.target))) {
        loadTickets(results.dataset.mapTickets);
      }
    });
    var button = document.getElementById("map-filter");
    if (button) {
      button.addEventListener("click", function () {
        var b = map.getBounds();
        var box = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(5); });
        document.getElementById("f-bbox").value = box.join(",");
        document.getElementById("filters").requestSubmit();
      });
    }
  }

  function spotMap() {
    var el = document.getElementById("spot-map");
    if (!el || !window.L) { return; }
    var spot = JSON.parse(el.dataset.spot);
    var here = [spot[1], spot[0]];
    var map = L.map(el, { maxZoom: 19 }).setView(here, 17);
    baseLayer(map, el);
    var marker = L.circleMarker(here, { radius: 9, color: LATE, weight: 3, fillColor: "#fff", fillOpacity: 1 })
      .bindTooltip(text(el.dataset.ref), { permanent: true }).addTo(map);
    if (el.dataset.areas) {
      fetch(el.dataset.areas, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
        L.geoJSON(data, {
          pane: areaPane(map),
          style: function (f) { return { color: f.properties.level === "street" ? "#364fc7" : "#748ffc", weight: 1, fill: false }; },
          onEachFeature: function (f, layer) { layer.bindTooltip(text(f.properties.name), { sticky: true }); }
        }).addTo(map);
      });
    }
    var candidates = JSON.parse(el.dataset.candidates || "[]");
    candidates.forEach(function (c) {
      L.circleMarker([c.lat, c.lon], { radius: 7, color: "#fff", weight: 1, fillColor: STATUS_COLOURS[c.status] || "#333", fillOpacity: 0.9 })
        .bindTooltip(text(c.ref)).on("click", function () { window.location.assign(c.url); }).addTo(map);
    });
    window.sentinelSpot = { map: map, marker: marker };
  }

  // -- the queue's keys

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("table.queue tbody tr[data-url]")); }
  var current = -1;

  function select(index) {
    var all = rows();
    if (!all.length) { return; }
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (r, i) { r.classList.toggle("selected", i === current); r.setAttribute("aria-selected", i === current ? "true" : "false"); });
    var link = all[current].querySelector("a");
    if (link) { link.focus(); }
  }

  function acceptSelected() {
    var row = rows()[current];
    if (!row || row.dataset.canAccept !== "true") { return; }
    var body = new URLSearchParams({ action: "accept", version: row.dataset.version, csrf_token: csrfToken() });
    fetch("/console/tickets/" + row.dataset.ticket + "/actions", {
      method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRF-Token": csrfToken() }
    }).then(function () {
      var form = document.getElementById("filters");
      if (form) { form.requestSubmit(); } else { window.location.reload(); }
    });
  }

  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var keys = document.getElementById("keys");
    switch (event.key) {
      case "j": select(current + 1); break;
      case "k": select(current - 1); break;
      case "Enter":
        if (current >= 0 && rows()[current] && document.activeElement.tagName !== "A") { window.location.assign(rows()[current].dataset.url); } else { return; }
        break;
      case "a": acceptSelected(); break;
      case "x": {
        var row = rows()[current];
        if (row) { var box = row.querySelector("input[type=checkbox]"); box.checked = !box.checked; }
        break;
      }
      case "/": {
        var search = document.getElementById("f-q");
        if (search) { search.focus(); } else { return; }
        break;
      }
      case "?": if (keys) { keys.showModal(); } break;
      default: return;
    }
    event.preventDefault();
  });

  document.addEventListener("htmx:afterSwap", function () { current = -1; });

  // A filter left empty stays out of the URL.
  document.addEventListener("htmx:configRequest", function (event) {
    var params = event.detail.parameters;
    var empty = [];
    if (params && typeof params.forEach === "function" && typeof params.delete === "function") {
      params.forEach(function (value, key) { if (value === "") { empty.push(key); } });
      empty.forEach(function (key) { params.delete(key); });
    } else if (params) {
      Object.keys(params).forEach(function (key) { if (params[key] === "") { delete params[key]; } });
    }
  });

  // -- photos

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a.photo");
    var box = document.getElementById("lightbox");
    if (!link || !box) { return; }
    event.preventDefault();
    box.querySelector("img").src = link.href;
    box.querySelector("img").alt = link.querySelector("img").alt;
    box.showModal();
  });

  // -- SLA countdowns, kept current

  function tick() {
    var locale = document.body.dataset.locale || "zh-CN";
    var format = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(locale, { numeric: "auto" }) : null;
    if (!format) { return; }
    var now = Date.now();
    document.querySelectorAll(".sla[data-due]").forEach(function (el) {
      var minutes = Math.round((Date.parse(el.dataset.due) - now) / 60000);
      var text = Math.abs(minutes) < 90 ? format.format(minutes, "minute")
        : Math.abs(minutes) < 48 * 60 ? format.format(Math.round(minutes / 60), "hour")
        : format.format(Math.round(minutes / 1440), "day");
      el.querySelector(".when").textContent = text;
    });
  }

  // -- photo moderation: boxes over the photo, kept in step with the form's checkboxes

  function moderation() {
    var stage = document.getElementById("boxes-stage");
    var list = document.getElementById("box-list");
    if (!stage || !list) { return; }
    var width = +stage.dataset.width, height = +stage.dataset.height;
    var image = stage.querySelector("img");

    function place(div, box) {
      div.style.left = (100 * box[0] / width) + "%";
      div.style.top = (100 * box[1] / height) + "%";
      div.style.width = (100 * box[2] / width) + "%";
      div.style.height = (100 * box[3] / height) + "%";
    }
    function checkboxOf(value) {
      return list.querySelector('input[name="box"][value="' + value + '"]');
    }
    function bind(div) {
      var input = checkboxOf(div.dataset.box);
      div.classList.toggle("off", input && !input.checked);
      div.addEventListener("click", function (event) {
        event.stopPropagation();
        if (!input) { return; }
        input.checked = !input.checked;
        div.classList.toggle("off", !input.checked);
      });
      if (input) {
        input.addEventListener("change", function () { div.classList.toggle("off", !input.checked); });
      }
    }
    stage.querySelectorAll(".box").forEach(function (div) {
      place(div, div.dataset.box.split(",").map(Number));
      bind(div);
    });

    // Drawing a box: press, drag, release; in the stored photo's pixels.
    var start = null, drawing = null;
    function at(event) {
      var rect = image.getBoundingClientRect();
      var x = Math.min(Math.max(event.clientX - rect.left, 0), rect.width);
      var y = Math.min(Math.max(event.clientY - rect.top, 0), rect.height);
      return [x * width / rect.width, y * height / rect.height];
    }
    // Whole pixels within the photo (the service refuses a box past its edge).
    function box(a, b) {
      var x = Math.floor(Math.min(a[0], b[0])), y = Math.floor(Math.min(a[1], b[1]));
      var w = Math.ceil(Math.max(a[0], b[0])) - x, h = Math.ceil(Math.max(a[1], b[1])) - y;
      x = Math.min(Math.max(x, 0), width - 1);
      y = Math.min(Math.max(y, 0), height - 1);
      return [x, y, Math.max(1, Math.min(w, width - x)), Math.max(1, Math.min(h, height - y))];
    }
    stage.addEventListener("pointerdown", function (event) {
      if (event.target.classList.contains("box")) { return; }
      event.preventDefault();
      start = at(event);
      drawing = document.createElement("div");
      drawing.className = "box box-drawn";
      stage.appendChild(drawing);
      stage.setPointerCapture(event.pointerId);
    });
    stage.addEventListener("pointermove", function (event) {
      if (drawing) { place(drawing, box(start, at(event))); }
    });
    stage.addEventListener("pointercancel", function () {
      if (drawing) { drawing.remove(); drawing = null; }
    });
    stage.addEventListener("pointerup", function (event) {
      if (!drawing) { return; }
      var b = box(start, at(event));
      if (b[2] < 4 || b[3] < 4) { drawing.remove(); drawing = null; return; }
      var value = b.join(",");
      drawing.dataset.box = value;
      var label = document.createElement("label");
      var input = document.createElement("input");
      input.type = "checkbox"; input.name = "box"; input.value = value; input.checked = true;
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + (list.dataset.drawn || "") + " · " + b[2] + "×" + b[3]));
      list.appendChild(label);
      var none = document.getElementById("no-suggestions");
      if (none) { none.remove(); }
      bind(drawing);
      drawing = null;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    queueMap();
    spotMap();
    moderation();
    window.setInterval(tick, 30000);
  });
})();
