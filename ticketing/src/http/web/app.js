// Vigil's pages. No framework and no build step: each page is a function that fetches
// from the JSON API (which checks roles and audits) and builds the DOM with `el`, which
// only ever sets text, never HTML, so nothing a camera or a user typed can run here.
"use strict";

const TZ = "Asia/Ho_Chi_Minh";
let csrf = sessionStorage.getItem("vigil-csrf");

function el(tag, attrs, ...children) {
  const svg = ["svg", "line", "polyline", "polygon", "circle", "rect", "g", "text", "title", "path", "marker", "image"].includes(tag);
  const e = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}
const $ = (sel, root) => (root || document).querySelector(sel);

function status(message, kind) {
  const s = $("#status");
  if (!s) return;
  s.textContent = message || "";
  s.className = kind || "";
}

async function api(method, url, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf || "";
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(url, opts);
  if (r.status === 401 && !url.startsWith("/api/login")) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw new Error("your session ended; log in again");
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!r.ok) throw new Error((data && data.error) || `${r.status} ${r.statusText}`);
  return data;
}

function localTime(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString("en-GB", { timeZone: TZ, hour12: false });
}
const pct = (x) => (x === null || x === undefined ? "–" : `${Math.round(x * 100)} %`);
const fmtVnd = (n) => (n === null || n === undefined ? "–" : n.toLocaleString("vi-VN") + " ₫");

const VIOLATIONS = {
  red_light: "Red light", wrong_way: "Wrong way", wrong_lane: "Wrong lane",
  sidewalk_driving: "On the sidewalk", no_stopping: "No stopping", no_parking: "No parking",
  speed_5_10: "Speeding 5–10 km/h", speed_10_20: "Speeding 10–20 km/h",
  speed_20_35: "Speeding 20–35 km/h", speed_over_35: "Speeding over 35 km/h", no_helmet: "No helmet",
};
const REJECT_REASONS = [
  ["plate_unreadable", "Plate unreadable"], ["vehicle_mismatch", "Vehicle does not match"],
  ["no_violation", "No violation"], ["priority_vehicle", "Priority vehicle on duty"],
  ["equipment_fault", "Signal or camera fault"], ["directed_by_officer", "Directed by an officer"],
  ["other", "Other"],
];
const AWAITING = ["detected", "in_review", "plate_corrected"];

// ---------------------------------------------------------------------------------------
// Evidence: key frames with the rule's geometry, plate, clip, signal

function geometryShapes(geometry) {
  const shapes = [];
  if (!geometry) return shapes;
  for (const [key, value] of Object.entries(geometry)) {
    if (!Array.isArray(value) || !value.length || !Array.isArray(value[0])) continue;
    const pts = value.map((p) => p.join(",")).join(" ");
    const closed = ["lane", "zone"].includes(key);
    shapes.push(el(closed ? "polygon" : "polyline", { points: pts, class: `geom geom-${key}` },
      el("title", { text: key.replace(/_/g, " ") })));
  }
  const dir = geometry.direction;
  const anchor = geometry.stop_line || geometry.lane;
  if (Array.isArray(dir) && Array.isArray(anchor)) {
    const cx = anchor.reduce((s, p) => s + p[0], 0) / anchor.length;
    const cy = anchor.reduce((s, p) => s + p[1], 0) / anchor.length;
    const len = Math.hypot(dir[0], dir[1]) || 1;
    const [dx, dy] = [(dir[0] / len) * 60, (dir[1] / len) * 60];
    shapes.push(el("line", { x1: cx - dx, y1: cy - dy, x2: cx, y2: cy, class: "geom geom-direction", "marker-end": "url(#arrow)" },
      el("title", { text: "lawful direction" })));
  }
  return shapes;
}

function keyFrame(src, label, manifest) {
  const geometry = manifest && manifest.measured && manifest.measured.geometry;
  const box = manifest && manifest.vehicle && (manifest.vehicle.boxes || []).find((b) => b.frame === label);
  const overlay = el("svg", { class: "overlay", preserveAspectRatio: "none", "aria-label": "rule geometry" },
    el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 8, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" },
      el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" })),
    geometryShapes(geometry),
    box ? el("rect", { x: box.x1, y: box.y1, width: box.x2 - box.x1, height: box.y2 - box.y1, class: "vehicle-box" }) : null);
  const img = el("img", { src, alt: `key frame: ${label}`, loading: "eager" });
  img.addEventListener("load", () => overlay.setAttribute("viewBox", `0 0 ${img.naturalWidth} ${img.naturalHeight}`));
  const frame = el("div", { class: "frame", tabindex: 0, title: "Click or press Z to zoom" }, img, overlay);
  frame.addEventListener("click", () => zoom(frame));
  return el("figure", { class: "keyframe" }, frame, el("figcaption", { text: label }));
}

// A frame enlarged over the page: the wheel zooms about the pointer, dragging pans, Esc closes.
function zoom(frame) {
  closeZoom();
  const inner = frame.cloneNode(true);
  inner.classList.add("zoomed");
  let scale = 1, x = 0, y = 0, drag = null;
  const apply = () => { inner.style.transform = `translate(${x}px, ${y}px) scale(${scale})`; };
  const layer = el("div", { id: "zoom", role: "dialog", "aria-label": "zoomed key frame" }, inner,
    el("p", { class: "hint", text: "wheel or +/− to zoom · drag to move · Esc to close" }));
  layer.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const f = ev.deltaY < 0 ? 1.2 : 1 / 1.2;
    scale = Math.min(8, Math.max(1, scale * f));
    apply();
  }, { passive: false });
  layer.addEventListener("mousedown", (ev) => { drag = [ev.clientX - x, ev.clientY - y]; });
  layer.addEventListener("mousemove", (ev) => { if (drag) { x = ev.clientX - drag[0]; y = ev.clientY - drag[1]; apply(); } });
  layer.addEventListener("mouseup", () => { drag = null; });
  layer.addEventListener("dblclick", closeZoom);
  layer.zoomBy = (f) => { scale = Math.min(8, Math.max(1, scale * f)); apply(); };
  document.body.append(layer);
}
function closeZoom() { const z = $("#zoom"); if (z) z.remove(); return !!z; }

function signalPanel(manifest) {
  const m = (manifest && manifest.measured) || {};
  const rows = [];
  if (manifest && manifest.signal_at_crossing) {
    rows.push(["Signal at the line", el("span", { class: `signal signal-${manifest.signal_at_crossing}`, text: manifest.signal_at_crossing })]);
    if (m.red_for_ms !== undefined && m.red_for_ms !== null) rows.push(["Red for", `${(m.red_for_ms / 1000).toFixed(2)} s when the vehicle crossed`]);
    if (m.red_dwell_ms !== undefined) rows.push(["Grace after the change", `${(m.red_dwell_ms / 1000).toFixed(2)} s`]);
  }
  for (const [k, v] of Object.entries(m)) {
    if (["geometry", "red_for_ms", "red_dwell_ms", "signal_at_crossing"].includes(k)) continue;
    rows.push([k.replace(/_/g, " "), typeof v === "object" ? JSON.stringify(v) : String(v)]);
  }
  if (manifest && manifest.time) rows.push(["Video time", `${(manifest.time.video_offset_ms / 1000).toFixed(2)} s into ${manifest.source ? manifest.source.uri : "the source"}`]);
  return el("table", { class: "facts" }, rows.map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", {}, v))));
}

async function renderCase(container, detail, opts) {
  const evidence = (file) => `/api/evidence/${detail.event_id}/${file}`;
  let manifest = null;
  try { manifest = await api("GET", evidence("manifest.json")); } catch (e) { status(`evidence manifest: ${e.message}`, "error"); }
  const files = ((manifest && manifest.files) || []).map((f) => f.name);
  const frames = files.filter((f) => f.endsWith(".jpg") && f !== "plate.jpg" && f !== "head.jpg");
  const plate = manifest && manifest.plate;
  container.replaceChildren(
    el("header", { class: "case-head" },
      el("h2", {}, `Case ${detail.id} · `, VIOLATIONS[detail.violation] || detail.violation),
      el("span", { class: `state state-${detail.state}`, text: detail.state.replace(/_/g, " ") }),
      el("span", { class: "muted", text: `${detail.camera_id} · ${localTime(detail.occurred_at)} · ${detail.vehicle_class}` })),
    el("section", { class: "frames" }, frames.map((f) => keyFrame(evidence(f), f.replace(/^\d+_|\.jpg$/g, ""), manifest))),
    el("section", { class: "evidence-row" },
      el("div", { class: "plate-box" },
        files.includes("plate.jpg") ? el("img", { src: evidence("plate.jpg"), alt: "plate crop", class: "plate-crop" }) : el("p", { class: "muted", text: "no plate crop" }),
        el("div", {},
          el("div", { class: "plate-text", id: "plate-text", text: detail.plate || "(no plate read)" }),
          detail.original_plate ? el("div", { class: "muted", text: `read as ${detail.original_plate}` }) : null,
          el("div", { class: "muted", text: `confidence ${pct(detail.plate_confidence)}${plate && plate.colour ? " · " + plate.colour + " plate" : ""}` }),
          plateChoice(detail, opts && opts.onPlate)),
        files.includes("head.jpg")
          ? el("figure", { class: "head-box" }, el("img", { src: evidence("head.jpg"), alt: "rider's head", class: "head-crop" }), el("figcaption", { class: "muted", text: "rider's head, best look" }))
          : null),
      files.includes("clip.mp4")
        ? el("video", { src: evidence("clip.mp4"), controls: true, muted: true, autoplay: true, loop: true, playsinline: true, preload: "auto", id: "clip" })
        : el("p", { class: "muted", text: "no clip (the source ended before it)" }),
      signalPanel(manifest)),
    el("section", { class: "case-meta" },
      detail.fine ? el("p", {}, `Fine: ${fmtVnd(detail.fine.min_vnd)} – ${fmtVnd(detail.fine.max_vnd)}`, detail.fine.points ? ` · −${detail.fine.points} points` : "", detail.fine.article ? ` · ${detail.fine.article}` : "") : null,
      detail.reject_reason ? el("p", {}, `Rejected: ${detail.reject_reason} ${detail.reject_text || ""}`) : null,
      detail.notice_code ? el("p", {}, "Notice: ", el("a", { href: `/notices/${detail.notice_code}`, text: detail.notice_code })) : null,
      el("details", {}, el("summary", { text: `History (${detail.history.length})` }),
        el("ol", {}, detail.history.map((h) => el("li", { text: `${localTime(h.at)} ${h.actor}: ${h.action}${h.detail ? " — " + h.detail : ""}` }))))),
    opts && opts.actions ? opts.actions : "");
  const video = $("#clip", container);
  // The property, not the attribute, is what lets a clip start playing by itself.
  if (video) { video.muted = true; video.play().catch(() => {}); }
}

// An uncertain plate: the likeliest reading and the other candidates, each a button that
// confirms it as the plate when the officer is reviewing, plain text otherwise.
function plateChoice(detail, onPlate) {
  if (!detail.plate_uncertain) return null;
  const options = [[detail.plate, detail.plate_confidence], ...(detail.plate_candidates || []).map((c) => [c.text, c.confidence])];
  return el("div", { class: "plate-uncertain", id: "plate-uncertain" },
    el("strong", { text: "Plate uncertain" }), " — compare with the crop and confirm the right one:",
    el("ul", { class: "candidates" }, options.map(([text, c]) => el("li", {},
      onPlate ? el("button", { type: "button", class: "candidate", "data-plate": text, onclick: () => onPlate(text) }, text) : el("span", { class: "plate", text }),
      el("span", { class: "muted", text: ` ${pct(c)}` })))));
}

// ---------------------------------------------------------------------------------------
// Review queue

function decisionBar(onApprove, onReject, onPlate, current, uncertain) {
  const reason = el("select", { id: "reject-reason" }, REJECT_REASONS.map(([v, t], i) => el("option", { value: v, text: `${i + 1}. ${t}` })));
  const reasonText = el("input", { id: "reject-text", placeholder: "details (optional; needed for Other)" });
  const rejectPanel = el("form", { id: "reject-panel", class: "panel", hidden: true },
    el("label", {}, "Reason ", reason), reasonText, el("button", { type: "submit", text: "Reject (Enter)" }),
    el("button", { type: "button", class: "ghost", text: "Cancel (Esc)", onclick: () => hide(rejectPanel) }));
  rejectPanel.addEventListener("submit", (ev) => { ev.preventDefault(); onReject(reason.value, reasonText.value); });
  reason.addEventListener("keydown", (ev) => {
    const n = Number(ev.key);
    if (n >= 1 && n <= REJECT_REASONS.length) { ev.preventDefault(); reason.selectedIndex = n - 1; }
    if (ev.key === "Enter") { ev.preventDefault(); onReject(reason.value, reasonText.value); }
  });
  const plateInput = el("input", { id: "plate-input", value: current || "", autocomplete: "off", spellcheck: "false" });
  const platePanel = el("form", { id: "plate-panel", class: "panel", hidden: true },
    el("label", {}, "Plate ", plateInput), el("button", { type: "submit", text: "Save plate (Enter)" }),
    el("button", { type: "button", class: "ghost", text: "Cancel (Esc)", onclick: () => hide(platePanel) }));
  platePanel.addEventListener("submit", (ev) => { ev.preventDefault(); onPlate(plateInput.value); });
  return el("section", { class: "decide" },
    el("div", { class: "buttons" },
      el("button", { id: "approve", class: "approve", onclick: onApprove, disabled: !!uncertain, title: uncertain ? "the plate is uncertain: confirm or correct it first" : "" }, el("kbd", { text: "A" }), " Approve"),
      el("button", { id: "reject", class: "reject", onclick: () => show(rejectPanel, reason) }, el("kbd", { text: "R" }), " Reject…"),
      el("button", { id: "correct", onclick: () => show(platePanel, plateInput) }, el("kbd", { text: "P" }), " Correct plate…"),
      el("span", { class: "muted keys", text: "J / K next / previous · Z zoom · Space play/pause" })),
    rejectPanel, platePanel);
}
function show(panel, focus) { panel.hidden = false; focus.focus(); if (focus.select) focus.select(); }
function hide(panel) { panel.hidden = true; }
const typing = () => ["INPUT", "SELECT", "TEXTAREA"].includes((document.activeElement || {}).tagName);

async function reviewPage(app) {
  const params = new URLSearchParams(location.search);
  const filters = el("form", { class: "filters", id: "filters" },
    el("label", {}, "Camera ", el("input", { name: "camera", value: params.get("camera") || "", size: 12 })),
    el("label", {}, "Violation ", el("select", { name: "violation" }, el("option", { value: "", text: "any" }),
      Object.entries(VIOLATIONS).map(([v, t]) => el("option", { value: v, text: t, selected: params.get("violation") === v })))),
    el("label", {}, "From ", el("input", { name: "from", type: "date", value: params.get("from") || "" })),
    el("label", {}, "To ", el("input", { name: "to", type: "date", value: params.get("to") || "" })),
    el("button", { type: "submit", text: "Filter" }));
  const list = el("ol", { id: "queue", class: "queue" });
  const count = el("p", { class: "muted", id: "queue-count" });
  const view = el("article", { id: "case", class: "case" });
  app.replaceChildren(el("div", { class: "review" }, el("aside", {}, filters, count, list), view));

  let queue = [];
  let index = 0;
  let busy = false;
  const query = () => {
    const f = new FormData(filters);
    const q = new URLSearchParams({ state: AWAITING.join(","), limit: "500" });
    if (f.get("camera")) q.set("camera", f.get("camera"));
    if (f.get("violation")) q.set("violation", f.get("violation"));
    // Dates are the officer's days, in Vietnam's time.
    if (f.get("from")) q.set("from", `${f.get("from")}T00:00:00+07:00`);
    if (f.get("to")) q.set("to", `${f.get("to")}T23:59:59+07:00`);
    return q;
  };
  const drawList = () => {
    count.textContent = `${queue.length} case(s) waiting, oldest first`;
    list.replaceChildren(...queue.map((c, i) => el("li", { class: i === index ? "current" : "", "data-case": c.id, onclick: () => open(i) },
      el("strong", { text: `#${c.id}` }), ` ${VIOLATIONS[c.violation] || c.violation} · `, el("span", { class: c.plate_uncertain ? "plate uncertain" : "plate", text: c.plate ? (c.plate_uncertain ? `${c.plate}?` : c.plate) : "?" }),
      el("div", { class: "muted", text: `${c.camera_id} · ${localTime(c.occurred_at)}` }))));
  };
  const load = async () => {
    queue = await api("GET", "/api/cases?" + query().toString());
    index = 0;
    drawList();
    if (queue.length) await open(0); else view.replaceChildren(el("p", { class: "empty", text: "Nothing waiting for review." }));
  };
  const open = async (i) => {
    if (i < 0 || i >= queue.length) return;
    index = i;
    drawList();
    let c = queue[i];
    try {
      const detail = c.state === "detected" ? await api("POST", `/api/cases/${c.id}/open`) : await api("GET", `/api/cases/${c.id}`);
      queue[i] = detail;
      await renderCase(view, detail, { actions: decisionBar(approve, reject, correct, detail.plate, detail.plate_uncertain), onPlate: correct });
      status(`Case ${detail.id} open`);
    } catch (e) { status(`case ${c.id}: ${e.message}`, "error"); }
  };
  const decided = async (what, call) => {
    if (busy || !queue.length) return;
    busy = true;
    const c = queue[index];
    try {
      const detail = await call(c);
      if (AWAITING.includes(detail.state) && detail.id === c.id) {
        queue[index] = detail;
        await renderCase(view, detail, { actions: decisionBar(approve, reject, correct, detail.plate, detail.plate_uncertain), onPlate: correct });
      } else {
        queue.splice(index, 1);
        if (index >= queue.length) index = Math.max(0, queue.length - 1);
        drawList();
        if (queue.length) await open(index); else view.replaceChildren(el("p", { class: "empty", text: "Nothing waiting for review." }));
      }
      status(`Case ${c.id}: ${what}`, "ok");
    } catch (e) { status(`case ${c.id}: ${e.message}`, "error"); } finally { busy = false; }
  };
  const approve = () => decided("approved", (c) => api("POST", `/api/cases/${c.id}/approve`));
  const reject = (reason, text) => decided(`rejected (${reason})`, (c) => api("POST", `/api/cases/${c.id}/reject`, { reason, text }));
  const correct = (plate) => decided(`plate corrected to ${plate}`, (c) => api("POST", `/api/cases/${c.id}/plate`, { plate }));

  filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    history.replaceState(null, "", "/review?" + new URLSearchParams([...new FormData(filters).entries()].filter(([, v]) => v)).toString());
    load().catch((e) => status(e.message, "error"));
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "Escape") {
      if (closeZoom()) return;
      for (const p of ["#reject-panel", "#plate-panel"]) { const x = $(p); if (x && !x.hidden) { x.hidden = true; document.activeElement.blur(); } }
      return;
    }
    const z = $("#zoom");
    if (z && (ev.key === "+" || ev.key === "=")) { z.zoomBy(1.25); return; }
    if (z && ev.key === "-") { z.zoomBy(0.8); return; }
    if (typing()) return;
    const key = ev.key.toLowerCase();
    if (key === "a") { ev.preventDefault(); approve(); }
    else if (key === "r") { ev.preventDefault(); const b = $("#reject"); if (b) b.click(); }
    else if (key === "p") { ev.preventDefault(); const b = $("#correct"); if (b) b.click(); }
    else if (key === "j" || key === "arrowdown") { ev.preventDefault(); open(index + 1); }
    else if (key === "k" || key === "arrowup") { ev.preventDefault(); open(index - 1); }
    else if (key === "z") { const f = $(".frame"); if (f) zoom(f); }
    else if (key === " ") { const v = $("#clip"); if (v) { ev.preventDefault(); if (v.paused) v.play(); else v.pause(); } }
  });
  await load();
}

async function casePage(app) {
  const id = location.pathname.split("/").pop();
  const view = el("article", { id: "case", class: "case" });
  app.replaceChildren(view);
  const detail = await api("GET", `/api/cases/${encodeURIComponent(id)}`);
  await renderCase(view, detail, {});
}

// ---------------------------------------------------------------------------------------
// Plate search

async function searchPage(app) {
  const params = new URLSearchParams(location.search);
  const form = el("form", { class: "filters search-form", id: "search" },
    el("label", {}, "Plate ", el("input", { name: "plate", id: "plate", value: params.get("plate") || "", required: true, autofocus: true, autocomplete: "off", spellcheck: "false", placeholder: "e.g. 98A-123.45 or 123.45" })),
    el("label", {}, "Camera ", el("input", { name: "camera", value: params.get("camera") || "", size: 10 })),
    el("label", {}, "Vehicle ", el("select", { name: "class" }, el("option", { value: "", text: "any" }),
      ["car", "motorbike", "bus", "truck", "tuktuk"].map((c) => el("option", { value: c, text: c, selected: params.get("class") === c })))),
    el("label", {}, "From ", el("input", { name: "from", type: "datetime-local", value: params.get("from") || "" })),
    el("label", {}, "To ", el("input", { name: "to", type: "datetime-local", value: params.get("to") || "" })),
    el("button", { type: "submit", text: "Search" }));
  const summary = el("p", { class: "muted", id: "summary", text: "Letters or digits OCR confuses (0/O/D, 1/I/L, 8/B, 5/S, 2/Z, 6/G) match each other; in 6 or more characters one wrong, missing or extra character is forgiven." });
  const timeline = el("div", { id: "timeline", class: "timeline" });
  const results = el("ol", { id: "results", class: "results" });
  const player = el("section", { id: "footage", class: "footage", hidden: true });
  app.replaceChildren(form, summary, timeline, player, results);

  const query = () => {
    const f = new FormData(form);
    const q = new URLSearchParams();
    for (const [k, v] of f.entries()) {
      if (!v) continue;
      // datetime-local has no zone: it is the investigator's (Vietnam's) time.
      q.set(k, k === "from" || k === "to" ? `${v}:00+07:00` : v);
    }
    return q;
  };
  const run = async () => {
    const q = query();
    history.replaceState(null, "", "/search?" + new URLSearchParams([...new FormData(form).entries()].filter(([, v]) => v)).toString());
    status("Searching…");
    let found;
    try { found = await api("GET", "/api/sightings?" + q.toString()); } catch (e) { status(e.message, "error"); return; }
    status("");
    summary.replaceChildren(`${found.length} sighting(s) for “${q.get("plate")}”, best match first · `,
      el("a", { href: "/api/sightings.csv?" + q.toString(), id: "csv", download: "", text: "Export CSV" }));
    drawTimeline(timeline, found);
    results.replaceChildren(...found.map((f) => {
      const s = f.sighting;
      return el("li", { id: `sighting-${f.id}`, class: "sighting", tabindex: 0 },
        s.has_thumbnail
          ? el("img", { src: `/api/sightings/${f.id}/thumbnail`, alt: `vehicle ${s.plate}`, loading: "lazy", onerror: (ev) => ev.target.replaceWith(el("div", { class: "nothumb", text: "no picture" })) })
          : el("div", { class: "nothumb", text: "no picture" }),
        el("div", {},
          el("div", { class: "plate", text: s.plate }),
          el("div", {}, el("span", { class: "score", text: `match ${pct(f.score)}` }), ` · read ${pct(s.confidence)}`),
          el("div", { class: "muted", text: `${localTime(s.seen_at)} · ${s.camera_id} · ${s.vehicle_class}${s.plate_colour ? " · " + s.plate_colour : ""}` }),
          el("button", { type: "button", class: "footage-btn", onclick: () => openFootage(f) }, "Open footage")));
    }));
  };
  const openFootage = async (f) => {
    let fo;
    try { fo = await api("GET", `/api/sightings/${f.id}/footage`); } catch (e) { status(e.message, "error"); return; }
    player.hidden = false;
    if (!fo.url) {
      player.replaceChildren(el("p", { text: `${f.sighting.plate}: no footage — ${fo.reason}` }));
      return;
    }
    const video = el("video", { src: fo.url, controls: true, autoplay: true, playsinline: true, id: "footage-video" });
    video.muted = true;
    video.addEventListener("loadedmetadata", () => { video.currentTime = Math.max(0, fo.offset_s - 1); video.play().catch(() => {}); });
    // A live camera's recording: an investigator may export a minute around it, signed.
    const exportBox = el("div", { id: "footage-export" });
    if (fo.kind === "footage") {
      const seen = new Date(f.sighting.seen_at).getTime();
      exportBox.append(el("button", { type: "button", id: "export-btn", onclick: async () => {
        let ex;
        try {
          ex = await api("POST", "/api/footage/exports", { camera_id: f.sighting.camera_id,
            from: new Date(seen - 30000).toISOString(), to: new Date(seen + 30000).toISOString() });
        } catch (e) { status(e.message, "error"); return; }
        exportBox.replaceChildren(el("p", {}, `Exported ${localTime(ex.starts_at)} to ${localTime(ex.ends_at)} (${(ex.bytes / 1e6).toFixed(1)} MB): `,
          el("a", { href: ex.video_url, download: "", id: "export-video", text: "video" }), " · ",
          el("a", { href: ex.manifest_url, download: "", text: "manifest" }), " · ",
          el("a", { href: ex.signature_url, download: "", text: "signature" })));
      } }, "Export a minute around it (signed)"));
    }
    player.replaceChildren(el("h3", {}, `${f.sighting.plate} · ${localTime(f.sighting.seen_at)} · ${f.sighting.camera_id}`),
      video, exportBox, fo.case_id ? el("p", {}, "From the evidence of ", el("a", { href: `/cases/${fo.case_id}`, text: `case ${fo.case_id}` })) : el("p", { class: "muted", text: fo.kind === "footage" ? "From the camera's continuous recording." : "From the recording it was read in." }));
    player.scrollIntoView({ block: "nearest" });
  };
  form.addEventListener("submit", (ev) => { ev.preventDefault(); run(); });
  if (params.get("plate")) await run();
}

// Sightings on a time axis, each a picture of the vehicle on a stem as high as its match
// score (the best 40 pictured; the rest are dots).
function drawTimeline(box, found) {
  if (!found.length) { box.replaceChildren(); return; }
  const times = found.map((f) => Date.parse(f.sighting.seen_at));
  let [t0, t1] = [Math.min(...times), Math.max(...times)];
  if (t1 - t0 < 60000) { t0 -= 30000; t1 += 30000; }
  const W = 1000, H = 120, pad = 40;
  const x = (t) => pad + ((t - t0) / (t1 - t0)) * (W - 2 * pad);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((k) => t0 + k * (t1 - t0));
  box.replaceChildren(el("svg", { viewBox: `0 0 ${W} ${H + 20}`, class: "timeline-svg", role: "img", "aria-label": "sightings over time" },
    el("line", { x1: pad, y1: H, x2: W - pad, y2: H, class: "axis" }),
    ticks.map((t) => el("text", { x: x(t), y: H + 15, class: "tick", "text-anchor": "middle", text: localTime(new Date(t).toISOString()) })),
    found.map((f, i) => el("g", { class: "mark", onclick: () => { const li = $(`#sighting-${f.id}`); if (li) { li.scrollIntoView({ block: "center" }); li.focus(); } } },
      el("line", { x1: x(times[i]), x2: x(times[i]), y1: H, y2: H - 10 - 60 * f.score, class: "stem" }),
      i < 40 && f.sighting.has_thumbnail
        ? el("image", { href: `/api/sightings/${f.id}/thumbnail`, x: x(times[i]) - 24, y: H - 42 - 60 * f.score, width: 48, height: 32, preserveAspectRatio: "xMidYMid slice" })
        : null,
      el("circle", { cx: x(times[i]), cy: H - 10 - 60 * f.score, r: 5, class: f.score >= 0.999 ? "exact" : "near" },
        el("title", { text: `${f.sighting.plate} · ${localTime(f.sighting.seen_at)} · ${f.sighting.camera_id}` }))))));
}

// ---------------------------------------------------------------------------------------
// Cameras and operations

async function camerasPage(app) {
  const map = el("div", { id: "map", class: "map" });
  const table = el("table", { id: "cameras", class: "list" });
  app.replaceChildren(el("h2", { text: "Cameras" }), map, table);
  const refresh = async () => {
    const cams = await api("GET", "/api/cameras");
    drawMap(map, cams);
    table.replaceChildren(
      el("tr", {}, ["", "Camera", "State", "fps in", "Dropped", "Reconnects", "Last frame", "Reported"].map((h) => el("th", { text: h }))),
      ...cams.map((c) => el("tr", { id: `camera-${c.camera_id}` },
        el("td", {}, c.has_thumbnail ? el("img", { src: `/api/cameras/${encodeURIComponent(c.camera_id)}/thumbnail?t=${Date.parse(c.reported_at)}`, alt: `last frame of ${c.camera_id}`, class: "thumb" }) : "–"),
        el("td", {}, el("strong", { text: c.camera_id }), el("div", { class: "muted", text: `${c.name} — ${c.location}` })),
        el("td", {}, el("span", { class: `state cam-${c.state}`, text: c.state }), c.reason ? el("div", { class: "reason", text: c.reason }) : null),
        el("td", { text: c.fps_in.toFixed(1) }), el("td", { text: c.frames_dropped }), el("td", { text: c.reconnects }),
        el("td", { text: localTime(c.last_frame_at) }), el("td", { text: localTime(c.reported_at) }))));
    if (!cams.length) table.replaceChildren(el("tr", {}, el("td", { text: "No camera has reported yet: start `vigil run` or process a recording." })));
  };
  await refresh();
  setInterval(() => refresh().catch((e) => status(e.message, "error")), 5000);
}

// No tile server is reachable from the operations centre's network: the cameras are drawn
// on a plain plane, longitude and latitude scaled to fit, north up.
function drawMap(box, cams) {
  const placed = cams.filter((c) => c.latitude !== null && c.longitude !== null);
  const W = 800, H = 420, pad = 50;
  if (!placed.length) { box.replaceChildren(el("p", { class: "muted", text: "No camera has a position (set position = { lat, lon } in its config)." })); return; }
  const lats = placed.map((c) => c.latitude), lons = placed.map((c) => c.longitude);
  let [la0, la1, lo0, lo1] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
  const span = Math.max(la1 - la0, lo1 - lo0, 0.01);
  const cla = (la0 + la1) / 2, clo = (lo0 + lo1) / 2;
  const k = Math.min(W - 2 * pad, H - 2 * pad) / span;
  const px = (c) => [W / 2 + (c.longitude - clo) * k * Math.cos((cla * Math.PI) / 180), H / 2 - (c.latitude - cla) * k];
  box.replaceChildren(el("svg", { viewBox: `0 0 ${W} ${H}`, class: "map-svg", role: "img", "aria-label": "camera map" },
    el("rect", { x: 0, y: 0, width: W, height: H, class: "map-bg" }),
    el("text", { x: W - 30, y: 30, class: "north", text: "N ↑" }),
    placed.map((c) => {
      const [x, y] = px(c);
      return el("g", { class: `pin cam-${c.state}`, onclick: () => { const r = $(`#camera-${CSS.escape(c.camera_id)}`); if (r) r.scrollIntoView({ block: "center" }); } },
        el("circle", { cx: x, cy: y, r: 9 }), el("text", { x: x + 13, y: y + 4, text: c.camera_id }),
        el("title", { text: `${c.camera_id}: ${c.state}${c.reason ? " — " + c.reason : ""}` }));
    })));
}

async function operationsPage(app) {
  const [stats, overdue] = await Promise.all([api("GET", "/api/stats"), api("GET", "/api/overdue").catch(() => [])]);
  const byState = Object.entries(stats.cases_by_state || {});
  const max = Math.max(1, ...byState.map(([, n]) => n));
  app.replaceChildren(
    el("h2", { text: "Operations" }),
    el("section", { class: "cards" },
      el("div", { class: "card" }, el("div", { class: "big", text: stats.overdue }), "cases past a legal deadline"),
      el("div", { class: "card" }, el("div", { class: "big", text: Object.values(stats.outbox_pending || {}).reduce((a, n) => a + n, 0) }), "publications waiting to be sent"),
      el("div", { class: "card" }, el("div", { class: "big", text: byState.filter(([s]) => AWAITING.includes(s)).reduce((a, [, n]) => a + n, 0) }), "cases waiting for review")),
    el("h3", { text: "Cases per state" }),
    el("table", { id: "by-state", class: "list" }, byState.map(([s, n]) => el("tr", {},
      el("th", { text: s.replace(/_/g, " ") }), el("td", { class: "num", text: n }),
      el("td", { class: "bar-cell" }, el("div", { class: "bar", "data-w": Math.round((100 * n) / max) }))))),
    el("h3", { text: "Overdue" }),
    overdue.length
      ? el("table", { id: "overdue", class: "list" },
        el("tr", {}, ["Case", "Plate", "State", "Deadline", "Was due"].map((h) => el("th", { text: h }))),
        overdue.map((o) => el("tr", {}, el("td", {}, el("a", { href: `/cases/${o.case_id}`, text: `#${o.case_id}` })),
          el("td", { text: o.plate || "–" }), el("td", { text: o.state }), el("td", { text: o.deadline }), el("td", { text: localTime(o.due_at) }))))
      : el("p", { id: "overdue", class: "muted", text: "No case is past a deadline." }));
  // Widths set through the CSSOM: the page's policy allows no inline style attributes.
  for (const b of app.querySelectorAll(".bar")) b.style.width = `${b.dataset.w}%`;
}

// The fleet: workers, where each camera runs, the latest moves and why, the queues. Read
// again every 2 s: a worker falling silent shows within the agents' own takeover time.
async function fleetPage(app) {
  const cards = el("section", { class: "cards", id: "fleet-summary" });
  const workers = el("table", { id: "workers", class: "list" });
  const cameras = el("table", { id: "fleet-cameras", class: "list" });
  const moves = el("table", { id: "moves", class: "list" });
  app.replaceChildren(el("h2", { text: "Fleet" }), cards, el("h3", { text: "Workers" }), workers,
    el("h3", { text: "Cameras" }), cameras, el("h3", { text: "Latest moves" }), moves);
  const refresh = async () => {
    let f;
    try { f = await api("GET", "/api/fleet"); } catch (e) {
      app.replaceChildren(el("h2", { text: "Fleet" }), el("p", { id: "no-fleet", class: "muted", text: e.message }));
      return false;
    }
    const alive = f.workers.filter((w) => w.alive).length;
    const running = f.cameras.filter((c) => c.state === "running").length;
    const waiting = (name) => (f.queues.find((q) => q.stream === name) || { messages: 0 }).messages;
    cards.replaceChildren(
      el("div", { class: "card" }, el("div", { class: "big", id: "workers-alive", text: `${alive} / ${f.workers.length}` }), "workers heard from"),
      el("div", { class: "card" }, el("div", { class: "big", id: "cameras-running", text: `${running} / ${f.cameras.length}` }), "cameras running"),
      el("div", { class: "card" }, el("div", { class: "big", text: waiting("VIGIL_EVENTS") }), "violations waiting for the case service"),
      el("div", { class: "card" }, el("div", { class: "big", text: waiting("VIGIL_REFUSED") }), "violations refused, for a person"));
    workers.replaceChildren(
      el("tr", {}, ["Worker", "State", "Cameras", "Load", "Last heard", "Started"].map((h) => el("th", { text: h }))),
      ...f.workers.map((w) => el("tr", { id: `worker-${w.name}` },
        el("td", {}, el("strong", { text: w.name })),
        el("td", {}, el("span", { class: `state ${w.alive ? "cam-streaming" : "cam-failed"}`, text: w.alive ? (w.draining ? "draining" : "alive") : "silent" })),
        el("td", { text: `${w.cameras.length} / ${w.capacity}`, title: w.cameras.join(", ") }),
        el("td", { text: pct(w.load) }),
        el("td", { text: `${w.last_heard_s.toFixed(1)} s ago` }),
        el("td", { text: localTime(w.started_at) }))));
    if (!f.workers.length) workers.replaceChildren(el("tr", {}, el("td", { text: "No worker has joined: start `vigil run --fleet`." })));
    cameras.replaceChildren(
      el("tr", {}, ["Camera", "State", "Worker", "Since", "Pinned to"].map((h) => el("th", { text: h }))),
      ...f.cameras.map((c) => el("tr", { id: `fleet-camera-${c.id}` },
        el("td", {}, el("strong", { text: c.id })),
        el("td", {}, el("span", { class: `state cam-${c.state === "running" ? "streaming" : c.state === "paused" ? "recorded" : "stalled"}`, text: c.state.replace(/_/g, " ") })),
        el("td", { text: c.worker || "–" }), el("td", { text: localTime(c.since) }), el("td", { text: c.pin || "–" }))));
    if (!f.cameras.length) cameras.replaceChildren(el("tr", {}, el("td", { text: "The fleet has no camera: add one with `vigil fleet add-camera`." })));
    moves.replaceChildren(
      el("tr", {}, ["When", "Camera", "From", "To", "Why"].map((h) => el("th", { text: h }))),
      ...f.moves.slice().reverse().map((m) => el("tr", {},
        el("td", { text: localTime(m.at) }), el("td", { text: m.camera }), el("td", { text: m.from || "–" }),
        el("td", { text: m.to || "–" }), el("td", { class: "muted", text: m.reason.replace(/_/g, " ") + (m.detail ? `: ${m.detail}` : "") }))));
    return true;
  };
  const jobs = el("table", { id: "jobs", class: "list" });
  app.append(el("h3", { text: "Batch jobs" }), jobs);
  const refreshJobs = async () => {
    const all = await api("GET", "/api/jobs");
    jobs.replaceChildren(
      el("tr", {}, ["Job", "Camera", "Recordings", "Tasks done", "Frames", "Violations", "Failed", "Submitted"].map((h) => el("th", { text: h }))),
      ...all.map((p) => {
        const failed = p.done.filter((o) => o.error);
        return el("tr", { id: `job-${p.job.id}` },
          el("td", {}, el("strong", { text: p.job.id })), el("td", { text: p.job.camera_id }),
          el("td", { text: p.job.recordings.length, title: p.job.recordings.join("\n") }),
          el("td", {}, `${p.done.length} / ${p.job.tasks}`, el("div", { class: "bar", "data-w": Math.round((100 * p.done.length) / Math.max(1, p.job.tasks)) })),
          el("td", { text: p.frames }), el("td", { text: p.violations }),
          el("td", { class: failed.length ? "reason" : "", text: failed.length ? failed.map((o) => o.error).join("; ") : "–" }),
          el("td", { text: localTime(p.job.submitted_at) }));
      }));
    if (!all.length) jobs.replaceChildren(el("tr", {}, el("td", { text: "No batch job: submit one below or with `vigil batch --submit`." })));
    for (const b of jobs.querySelectorAll(".bar")) b.style.width = `${b.dataset.w}%`;
  };
  if (await refresh()) {
    await refreshJobs().catch((e) => status(e.message, "error"));
    await jobForm(app, refreshJobs);
    const timer = setInterval(() => refresh().then((ok) => { if (!ok) clearInterval(timer); else return refreshJobs(); }).catch((e) => status(e.message, "error")), 2000);
  }
}

// A batch job from the server's recordings library (operators): a fleet camera, the
// recordings in the order they were filmed, and where the first starts when the files do
// not say. Shown only where the server has a library and the user may submit (the API
// answers 404 or 403 otherwise, and the form is simply not there).
async function jobForm(app, refreshJobs) {
  let recordings, fleet;
  try {
    [recordings, fleet] = await Promise.all([api("GET", "/api/recordings"), api("GET", "/api/fleet")]);
  } catch (_) { return; }
  const camera = el("select", { id: "job-camera", required: true },
    fleet.cameras.map((c) => el("option", { value: c.id, text: c.id })));
  const filter = el("input", { id: "job-filter", type: "search", placeholder: "filter by name" });
  const list = el("div", { id: "job-recordings", class: "checklist" });
  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    const checked = new Set([...list.querySelectorAll("input:checked")].map((i) => i.value));
    list.replaceChildren(...recordings.filter((r) => !q || r.name.toLowerCase().includes(q)).slice(0, 500).map((r) =>
      el("label", {}, el("input", { type: "checkbox", value: r.name, checked: checked.has(r.name) }),
        ` ${r.name} `, el("span", { class: "muted", text: `${(r.bytes / 1e6).toFixed(1)} MB` }))));
    if (!list.children.length) list.append(el("p", { class: "muted", text: "No recording in the library matches." }));
  };
  filter.addEventListener("input", draw);
  draw();
  const start = el("input", { id: "job-start", type: "datetime-local", step: "1" });
  const gating = el("input", { id: "job-gating", type: "checkbox", checked: true });
  const submit = async (ev) => {
    ev.preventDefault();
    const names = [...list.querySelectorAll("input:checked")].map((i) => i.value);
    if (!names.length) { status("choose at least one recording", "error"); return; }
    const body = { camera_id: camera.value, recordings: names, motion_gating: gating.checked };
    // The form's time is the junction's (Vietnam keeps one offset all year).
    if (start.value) body.start = `${start.value.length === 16 ? start.value + ":00" : start.value}+07:00`;
    try {
      const r = await api("POST", "/api/jobs", body);
      status(`job ${r.job.id}: ${r.job.tasks} task(s) on the queue` + (r.refused.length ? `; left out: ${r.refused.join("; ")}` : ""), r.refused.length ? "error" : "ok");
      await refreshJobs();
    } catch (e) { status(e.message, "error"); }
  };
  app.append(el("h3", { text: "New batch job" }),
    el("form", { id: "job-form", onsubmit: submit },
      el("label", {}, "Camera ", camera), " ",
      el("label", {}, "First recording starts at ", start, el("span", { class: "muted", text: " (if the files do not record it)" })), " ",
      el("label", {}, gating, " detect only where the picture changed"),
      filter, list,
      el("button", { type: "submit", id: "job-submit", text: "Submit job" })));
}

// ---------------------------------------------------------------------------------------

// Where to go after logging in: the page asked for, only if it is on this site. The text
// is resolved as the browser would resolve it (a backslash is a slash, tabs and newlines
// are dropped), only a result on this origin is taken, and it is followed as the whole
// URL: its path alone can begin with "//" (`/.//host/x`, `http://self//host/x`), which the
// browser would read as another host. Anything else goes home.
function sameOrigin(next) {
  try {
    const url = new URL(next || "/", location.origin);
    if (url.origin === location.origin) return url.href;
  } catch (_) { /* not a URL at all */ }
  return location.origin + "/";
}

async function loginPage() {
  const form = $("#login");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status("Logging in…");
    try {
      const s = await api("POST", "/api/login", { username: $("#username").value, password: $("#password").value });
      sessionStorage.setItem("vigil-csrf", s.csrf_token);
      location.href = sameOrigin(new URLSearchParams(location.search).get("next"));
    } catch (e) { status(e.message, "error"); }
  });
}

// Whatever goes wrong in the page is said on the page, not only in a console nobody reads.
window.addEventListener("error", (ev) => status(`page error: ${ev.message}`, "error"));
window.addEventListener("unhandledrejection", (ev) => status(`page error: ${ev.reason && ev.reason.message || ev.reason}`, "error"));

async function main() {
  if (document.body.dataset.page === "login") return loginPage();
  const app = $("#app");
  try {
    const s = await api("GET", "/api/session");
    if (s.csrf_token) { csrf = s.csrf_token; sessionStorage.setItem("vigil-csrf", csrf); }
  } catch (e) { status(e.message, "error"); return; }
  const logout = $("#logout");
  if (logout) logout.addEventListener("click", async () => {
    try { await api("POST", "/api/logout"); } finally { sessionStorage.removeItem("vigil-csrf"); location.href = "/login"; }
  });
  const pages = { review: reviewPage, case: casePage, search: searchPage, cameras: camerasPage, operations: operationsPage, fleet: fleetPage };
  const page = pages[app.dataset.page];
  try { if (page) await page(app); } catch (e) { status(e.message, "error"); }
}
main();
