/* cameras report: the gallery and table of a data-set run.
 *
 * The rows of per_image.csv are embedded as JSON (#report-data); this script renders one page of them at a time,
 * so only the current page's thumbnails get a src. No request is made beyond those images (and, in the full-size
 * view a click opens, the photo itself). The page's Content Security Policy allows this script by its hash only: no
 * inline handler, no style attribute — styles are set through the CSSOM.
 */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var byId = function (id) { return document.getElementById(id); };
  var col = {};
  data.columns.forEach(function (c, i) { col[c] = i; });
  var metricOf = {};
  data.metrics.forEach(function (m) { metricOf[m.key] = m; });
  data.items.forEach(function (it, n) {
    it.k = n;
    it.byMethod = {};
    it.r.forEach(function (ri) { it.byMethod[data.rows[ri][col.method]] = ri; });
    it.text = (it.i + " " + it.n + " " + it.c).toLowerCase();
  });

  var state = {
    view: "gallery", query: "", misses: false, sortKey: "", sortMethod: data.methods[0] || "",
    desc: true, page: 0, pageSize: data.pageSize, shown: data.methods.slice()
  };

  function value(ri, key) { return data.rows[ri][col[key]]; }
  function isMiss(ri) {
    if (!data.pointing) { return false; }
    var v = value(ri, data.pointing);
    return v === 0 || v === false;
  }
  function fmt(v) {
    if (v === null || v === undefined) { return "—"; }
    if (typeof v === "number") { return Number.isInteger(v) ? String(v) : v.toPrecision(4).replace(/\.?0+$/, ""); }
    if (typeof v === "boolean") { return v ? "yes" : "no"; }
    return String(v);
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }
  function compare(a, b) {
    var na = a === null || a === undefined, nb = b === null || b === undefined;
    if (na || nb) { return na === nb ? 0 : (na ? 1 : -1); }  /* missing values last, whatever the direction */
    if (typeof a === "number" && typeof b === "number") { return state.desc ? b - a : a - b; }
    var c = String(a).localeCompare(String(b));
    return state.desc ? -c : c;
  }
  function shown(m) { return state.shown.indexOf(m) >= 0; }
  function itemKeyValue(it) {
    var key = state.sortKey;
    if (key === "image") { return it.i; }
    if (key === "class_name") { return it.n; }
    var ri = it.byMethod[state.sortMethod];
    return ri === undefined ? null : value(ri, key);
  }
  function rowKeyValue(ri) {
    var key = state.sortKey;
    return value(ri, key);
  }
  function sorted(list, key) {
    if (!state.sortKey) { return list; }
    return list.map(function (x, n) { return [key(x), n, x]; })
      .sort(function (a, b) { return compare(a[0], b[0]) || a[1] - b[1]; })
      .map(function (t) { return t[2]; });
  }
  function galleryList() {
    var q = state.query;
    var list = data.items.filter(function (it) {
      if (q && it.text.indexOf(q) < 0) { return false; }
      if (state.misses) {
        return state.shown.some(function (m) { var ri = it.byMethod[m]; return ri !== undefined && isMiss(ri); });
      }
      return true;
    });
    return sorted(list, itemKeyValue);
  }
  function tableList() {
    var q = state.query, list = [];
    data.items.forEach(function (it) {
      if (q && it.text.indexOf(q) < 0) { return; }
      it.r.forEach(function (ri) {
        if (!shown(value(ri, "method"))) { return; }
        if (state.misses && !isMiss(ri)) { return; }
        list.push(ri);
      });
    });
    return sorted(list, rowKeyValue);
  }
  var itemOfRow = {};
  data.items.forEach(function (it) { it.r.forEach(function (ri) { itemOfRow[ri] = it; }); });

  var SVG = "http://www.w3.org/2000/svg";
  function svgEl(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }
  /* The boxes of the item and (for a method) the map's peak, over a picture of the photo's aspect: an SVG in the
   * photo's pixels, fitted like the images (contain), strokes of constant width on screen. */
  function marks(it, method) {
    if (!it.s) { return null; }
    var w = it.s[0], h = it.s[1];
    var svg = svgEl("svg", { "class": "marks", viewBox: "0 0 " + w + " " + h, preserveAspectRatio: "xMidYMid meet",
      "aria-hidden": "true" });
    it.b.forEach(function (b) {
      var r = { x: b[0] * w, y: b[1] * h, width: (b[2] - b[0]) * w, height: (b[3] - b[1]) * h,
        "vector-effect": "non-scaling-stroke" };
      r["class"] = "box-under"; svg.appendChild(svgEl("rect", r));
      r["class"] = "box"; svg.appendChild(svgEl("rect", r));
    });
    var pk = method ? it.pk[method] : null;
    if (pk) {
      var ri = it.byMethod[method], miss = ri !== undefined && isMiss(ri);
      var g = svgEl("g", { "class": "peak" + (miss ? " peak-miss" : ""), "data-x": pk[0], "data-y": pk[1] });
      var x = pk[0] * w, y = pk[1] * h, rad = 0.045 * Math.max(w, h);
      [["circle", { cx: x, cy: y, r: rad }], ["line", { x1: x - 2 * rad, y1: y, x2: x + 2 * rad, y2: y }],
        ["line", { x1: x, y1: y - 2 * rad, x2: x, y2: y + 2 * rad }]].forEach(function (s) {
        s[1]["vector-effect"] = "non-scaling-stroke";
        s[1]["class"] = "under"; g.appendChild(svgEl(s[0], s[1]));
        s[1]["class"] = "over"; g.appendChild(svgEl(s[0], s[1]));
      });
      svg.appendChild(g);
    }
    return svg;
  }
  function stack(it, method, label) {
    var what = method ? label + " map of " + it.i : "photo " + it.i;
    var box = el("button", { type: "button", "class": "stack", "aria-label": "full-size view: " + what,
      title: "click for the full-size view" });
    if (it.p) { box.appendChild(el("img", { src: it.p, alt: "photo " + it.i, decoding: "async" })); }
    var map = method ? it.m[method] : null;
    if (map) { box.appendChild(el("img", { "class": "map", src: map, alt: label + " map of " + it.i, decoding: "async" })); }
    if (!it.p && !map) { box.appendChild(el("span", { "class": "none", text: method ? "no saved map" : "photo not available" })); }
    var m = marks(it, method);
    if (m) { box.appendChild(m); }
    box.addEventListener("click", function () { openViewer(it, method || ""); });
    return box;
  }
  function metricList(ri) {
    var dl = el("dl", { "class": "metrics" });
    data.metrics.forEach(function (m) {
      var v = value(ri, m.key);
      var dd = el("dd", { text: fmt(v) });
      if (m.key === data.pointing && (v === 0 || v === false)) { dd.className = "miss"; dd.textContent = "miss"; }
      else if (m.key === data.pointing && (v === 1 || v === true)) { dd.className = "hit"; dd.textContent = "hit"; }
      dl.appendChild(el("dt", { text: m.name }));
      dl.appendChild(dd);
    });
    return dl;
  }
  function renderGallery(list, start) {
    var frag = document.createDocumentFragment();
    list.slice(start, start + state.pageSize).forEach(function (it) {
      var cells = [el("div", { "class": "cell" }, [stack(it, null, ""), el("div", { "class": "name", text: "photo" })])];
      data.methods.forEach(function (m) {
        if (!shown(m) || it.byMethod[m] === undefined) { return; }
        var note = it.m[m] ? null : el("div", { "class": "muted", text: "no saved map" });
        cells.push(el("div", { "class": "cell", "data-method": m },
          [stack(it, m, m), el("div", { "class": "name", text: m }), note, metricList(it.byMethod[m])]));
      });
      var title = el("h3", { text: it.i + " " }, [el("span", { "class": "cls", text: it.n + " (" + it.c + ")" })]);
      frag.appendChild(el("article", { "class": "item", "data-image": it.i, "data-class": it.c },
        [title, el("div", { "class": "strip" }, cells)]));
    });
    return frag;
  }
  function sortHeader(key, label) {
    var th = el("th", { scope: "col" });
    if (state.sortKey === key) { th.setAttribute("aria-sort", state.desc ? "descending" : "ascending"); }
    var b = el("button", { type: "button", "class": "sort", "data-key": key, text: label });
    b.addEventListener("click", function () { chooseSort(key, state.sortKey === key ? !state.desc : null); });
    th.appendChild(b);
    return th;
  }
  function renderTable(list, start) {
    var head = el("tr", {}, [el("th", { scope: "col", text: "#" }), el("th", { scope: "col", text: "overlay" }),
      sortHeader("image", "image"), sortHeader("class_name", "class"), sortHeader("method", "method")]);
    data.metrics.forEach(function (m) { head.appendChild(sortHeader(m.key, m.name)); });
    var body = el("tbody");
    list.slice(start, start + state.pageSize).forEach(function (ri, n) {
      var it = itemOfRow[ri], m = value(ri, "method");
      var tr = el("tr", { "data-row": String(ri), "data-method": m }, [
        el("td", { "class": "num", text: String(start + n + 1) }), el("td", {}, [stack(it, m, m)]),
        el("td", { text: it.i }), el("td", { text: it.n + " (" + it.c + ")" }), el("td", { text: m })]);
      data.metrics.forEach(function (mt) {
        var v = value(ri, mt.key), td = el("td", { "class": "num", text: fmt(v) });
        if (mt.key === data.pointing && (v === 0 || v === false)) { td.className += " miss"; }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    return el("div", { "class": "table-wrap" }, [el("table", {}, [el("thead", {}, [head]), body])]);
  }
  function render() {
    var list = state.view === "gallery" ? galleryList() : tableList();
    var pages = Math.max(1, Math.ceil(list.length / state.pageSize));
    state.page = Math.min(Math.max(0, state.page), pages - 1);
    var start = state.page * state.pageSize;
    var root = byId("gallery");
    root.textContent = "";
    root.className = state.view === "gallery" ? "cards" : "rows";
    root.style.setProperty("--cells", String(1 + state.shown.length));
    root.appendChild(state.view === "gallery" ? renderGallery(list, start) : renderTable(list, start));
    var what = state.view === "gallery" ? "item" : "row";
    var total = state.view === "gallery" ? data.items.length : data.rows.length;
    byId("status").textContent = list.length === 0 ? "No " + what + " matches." :
      (state.view === "gallery" ? "Items " : "Rows ") + (start + 1) + "–" + Math.min(start + state.pageSize, list.length) +
      " of " + list.length + (list.length < total ? " (" + total + " in the run)" : "");
    document.querySelectorAll(".pager").forEach(function (nav) {
      nav.querySelector(".page-of").textContent = "page " + (state.page + 1) + " of " + pages;
      nav.querySelector('[data-go="first"]').disabled = state.page === 0;
      nav.querySelector('[data-go="prev"]').disabled = state.page === 0;
      nav.querySelector('[data-go="next"]').disabled = state.page >= pages - 1;
      nav.querySelector('[data-go="last"]').disabled = state.page >= pages - 1;
    });
    byId("sort-dir").textContent = state.desc ? "descending" : "ascending";
    byId("sort-key").value = state.sortKey;
    byId("sort-method").disabled = state.view !== "gallery" || !metricOf[state.sortKey];
  }
  function chooseSort(key, desc) {
    state.sortKey = key;
    if (desc !== null && desc !== undefined) { state.desc = desc; }
    else if (metricOf[key]) { state.desc = metricOf[key].higher !== false; }
    else { state.desc = false; }
    state.page = 0;
    render();
  }

  byId("view-gallery").addEventListener("click", function () { setView("gallery"); });
  byId("view-table").addEventListener("click", function () { setView("table"); });
  function setView(view) {
    state.view = view;
    state.page = 0;
    byId("view-gallery").setAttribute("aria-pressed", String(view === "gallery"));
    byId("view-table").setAttribute("aria-pressed", String(view === "table"));
    render();
  }
  byId("search").addEventListener("input", function (e) { state.query = e.target.value.trim().toLowerCase(); state.page = 0; render(); });
  var misses = byId("misses");
  if (misses) { misses.addEventListener("change", function (e) { state.misses = e.target.checked; state.page = 0; render(); }); }
  byId("sort-key").addEventListener("change", function (e) { chooseSort(e.target.value, null); });
  byId("sort-method").addEventListener("change", function (e) { state.sortMethod = e.target.value; state.page = 0; render(); });
  byId("sort-dir").addEventListener("click", function () { state.desc = !state.desc; state.page = 0; render(); });
  byId("page-size").addEventListener("change", function (e) { state.pageSize = parseInt(e.target.value, 10) || data.pageSize; state.page = 0; render(); });
  byId("page-size").value = String(state.pageSize);
  document.querySelectorAll('input[name="method"]').forEach(function (box) {
    box.addEventListener("change", function () {
      state.shown = data.methods.filter(function (m) {
        var b = document.querySelector('input[name="method"][value="' + CSS.escape(m) + '"]');
        return b && b.checked;
      });
      render();
    });
  });
  byId("opacity").addEventListener("input", function (e) {
    document.documentElement.style.setProperty("--overlay-opacity", e.target.value);
  });
  document.querySelectorAll(".pager button").forEach(function (b) {
    b.addEventListener("click", function () {
      var go = b.getAttribute("data-go"), last = Number.MAX_SAFE_INTEGER;
      state.page = go === "first" ? 0 : go === "prev" ? state.page - 1 : go === "next" ? state.page + 1 : last;
      render();
    });
  });
  /* The full-size view: the photo itself (its thumbnail when the photo cannot be reached from the page), one
   * button per overlay, the boxes and the peak. */
  var viewer = byId("viewer"), viewing = null;
  function fitViewer() {
    if (!viewing) { return; }
    var it = viewing.it, img = byId("viewer-box").querySelector("img.photo");
    var w = it.s ? it.s[0] : (img && img.naturalWidth) || 4, h = it.s ? it.s[1] : (img && img.naturalHeight) || 3;
    var maxW = Math.max(200, window.innerWidth * 0.94 - 40), maxH = Math.max(150, window.innerHeight * 0.94 - 140);
    var scale = Math.min(maxW / w, maxH / h);
    var box = byId("viewer-box");
    box.style.width = Math.round(w * scale) + "px";
    box.style.height = Math.round(h * scale) + "px";
  }
  function showView(method) {
    var it = viewing.it;
    viewing.method = method;
    var box = byId("viewer-box");
    box.textContent = "";
    var note = byId("viewer-note");
    note.textContent = "";
    var src = it.o || it.p;
    if (src) {
      var photo = el("img", { "class": "photo", src: src, alt: "photo " + it.i });
      photo.addEventListener("error", function () {
        if (it.p && photo.getAttribute("src") !== it.p) {
          note.textContent = "The photo itself cannot be reached from this page; showing its thumbnail.";
          photo.setAttribute("src", it.p);
        }
      });
      photo.addEventListener("load", fitViewer);
      box.appendChild(photo);
    } else {
      note.textContent = "The photo is not available.";
    }
    if (method && it.m[method]) {
      box.appendChild(el("img", { "class": "map", src: it.m[method], alt: method + " map of " + it.i }));
    } else if (method) {
      note.textContent = "No saved map for " + method + ".";
    }
    var m = byId("viewer-marks").checked ? marks(it, method) : null;
    if (m) { box.appendChild(m); }
    viewer.querySelectorAll("[data-view]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-view") === method));
      b.disabled = b.getAttribute("data-view") !== "" && it.byMethod[b.getAttribute("data-view")] === undefined;
    });
    var ri = method ? it.byMethod[method] : undefined;
    byId("viewer-metrics").textContent = ri === undefined ? "" : data.metrics.map(function (mt) {
      return mt.name + ": " + fmt(value(ri, mt.key));
    }).join(" · ");
    fitViewer();
  }
  function openViewer(it, method) {
    viewing = { it: it, method: method };
    byId("viewer-title").textContent = it.i + " — " + it.n + " (" + it.c + ")";
    var open = byId("viewer-open");
    if (it.o || it.p) { open.setAttribute("href", it.o || it.p); } else { open.removeAttribute("href"); }
    open.hidden = !(it.o || it.p);
    showView(method);
    if (!viewer.open) { viewer.showModal(); }
  }
  viewer.querySelectorAll("[data-view]").forEach(function (b) {
    b.addEventListener("click", function () { showView(b.getAttribute("data-view")); });
  });
  byId("viewer-marks").addEventListener("change", function () { showView(viewing.method); });
  byId("viewer-close").addEventListener("click", function () { viewer.close(); });
  viewer.addEventListener("click", function (e) { if (e.target === viewer) { viewer.close(); } });
  viewer.addEventListener("close", function () { viewing = null; byId("viewer-box").textContent = ""; });
  viewer.addEventListener("keydown", function (e) {
    if (!viewing || (e.key !== "ArrowRight" && e.key !== "ArrowLeft")) { return; }
    var views = [""].concat(data.methods.filter(function (m) { return viewing.it.byMethod[m] !== undefined; }));
    var i = views.indexOf(viewing.method) + (e.key === "ArrowRight" ? 1 : -1);
    showView(views[(i + views.length) % views.length]);
  });
  window.addEventListener("resize", fitViewer);
  render();
}());
