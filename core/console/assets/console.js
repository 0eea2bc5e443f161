// The mesh console: renders GET /console/api/snapshot and
// /console/api/metrics, and follows /console/api/events (server-sent
// events) to refresh as things happen. Everything it talks to is the mesh
// that served it; it changes nothing.
"use strict";

(function () {
  const api = "/console/api/";
  const snapshotEvery = 2000;
  const keepEvents = 200;
  let snapshot = null;
  let series = { apps: {} };
  let refreshTimer = null;
  let inFlight = false;
  let lostSince = null;
  let lastRun = null; // the mesh run of the last event (its id is RUN.SEQ)
  let lastSeq = 0;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // scroll wraps a table in a region that scrolls sideways on a narrow
  // screen (the page itself never does) and can be reached with Tab.
  function scroll(label, table) {
    return el("div", { class: "scroll", tabIndex: 0, role: "region", ariaLabel: label }, table);
  }

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  function short(d) {
    if (!d) return "";
    return d.startsWith("sha256:") ? d.slice(0, 19) : d;
  }

  function ago(t) {
    if (!t || t.startsWith("0001-")) return "";
    const s = Math.max(0, (Date.now() - Date.parse(t)) / 1000);
    if (s < 60) return Math.floor(s) + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
    return Math.floor(s / 86400) + "d";
  }

  function stateCell(state) {
    return el("td", { class: "state state-" + state, "data-field": "state" }, state);
  }

  function progress(p) {
    const desired = (p && p.desired) || 0;
    const ready = (p && p.ready) || 0;
    const pct = desired > 0 ? Math.min(100, Math.round((100 * ready) / desired)) : 0;
    const bar = el("span", { class: "bar" }, el("span"));
    bar.firstChild.style.width = pct + "%";
    const proving = (p && p.proving) || 0;
    return [bar, el("span", { "data-field": "progress" }, ready + "/" + desired + (proving ? " (" + proving + " proving)" : ""))];
  }

  // spark draws the values as an SVG line scaled to their maximum.
  function spark(values, kind) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "spark " + kind);
    svg.setAttribute("viewBox", "0 0 120 28");
    svg.setAttribute("preserveAspectRatio", "none");
    const path = document.createElementNS(ns, "path");
    const max = Math.max(1e-9, ...values);
    if (values.length === 1) values = [values[0], values[0]];
    const n = values.length;
    let d = "";
    values.forEach((v, i) => {
      const x = n > 1 ? (120 * i) / (n - 1) : 120;
      const y = 27 - (25 * v) / max;
      d += (i === 0 ? "M" : "L") + x.toFixed(1) + " " + y.toFixed(1);
    });
    path.setAttribute("d", d || "M0 27L120 27");
    svg.append(path);
    const title = document.createElementNS(ns, "title");
    title.textContent = kind + ", last " + n + " samples, max " + max.toFixed(2);
    svg.append(title);
    return svg;
  }

  function chartCell(points, field, kind) {
    const values = points.map((p) => p[field] || 0);
    const last = values.length ? values[values.length - 1] : 0;
    return el("td", { class: "chart", "data-field": kind }, spark(values, kind), el("span", { class: "num" }, last.toFixed(last >= 100 ? 0 : 1)));
  }

  function renderApps(st) {
    const body = document.querySelector("#apps tbody");
    const rows = [];
    for (const a of st.apps || []) {
      const pts = (series.apps && series.apps[a.name]) || [];
      const state = a.degraded ? "degraded" : a.ready >= a.desired && a.desired > 0 ? "ready" : "progressing";
      const ro = a.rollout;
      rows.push(
        el("tr", { "data-app": a.name, "data-ready": a.ready, "data-desired": a.desired, "data-degraded": a.degraded },
          el("td", { "data-field": "name" }, a.name, a.site ? el("span", { class: "muted" }, " (site " + a.site + ")") : null),
          el("td", { class: "mono", "data-field": "digest", title: a.digest }, short(a.digest)),
          el("td", { "data-field": "desired" }, a.desired),
          el("td", { "data-field": "ready" }, a.ready),
          stateCell(state),
          el("td", { "data-field": "rollout" }, ro ? [ro.state + " ", ...progress(ro.progress)] : el("span", { class: "muted" }, "—")),
          chartCell(pts, "requests_per_s", "requests"),
          chartCell(pts, "errors_5xx_per_s", "errors"),
          chartCell(pts, "latency_p95_ms", "latency")));
    }
    body.replaceChildren(...rows);
    document.getElementById("no-apps").hidden = rows.length > 0;
  }

  function renderInstances(st) {
    const box = document.getElementById("instances");
    const byApp = new Map();
    for (const i of st.instances || []) {
      if (!byApp.has(i.app)) byApp.set(i.app, []);
      byApp.get(i.app).push(i);
    }
    // Instances on other hosts of a cluster are not this process's: they
    // show through the endpoints they registered.
    for (const a of st.apps || []) {
      const local = new Set((byApp.get(a.name) || []).map((i) => i.node_id));
      for (const ep of a.endpoints || []) {
        if (local.has(ep.node_id)) continue;
        if (!byApp.has(a.name)) byApp.set(a.name, []);
        byApp.get(a.name).push({ remote: true, app: a.name, node_id: ep.node_id, url: ep.url, digest: ep.digest });
      }
    }
    const parts = [];
    for (const [app, list] of byApp) {
      const rows = list.map((i) => i.remote ? remoteRow(i) :
        el("tr", { "data-instance": i.instance, "data-app": i.app, "data-node": i.node_id, "data-state": i.state, "data-pid": i.pid },
          el("td", { "data-field": "node" }, i.node_id),
          el("td", { class: "mono", "data-field": "instance" }, i.instance),
          el("td", { class: "mono", title: i.digest }, short(i.digest)),
          stateCell(i.state),
          el("td", { "data-field": "pid" }, i.pid || ""),
          el("td", { "data-field": "port" }, i.port || ""),
          el("td", { "data-field": "uptime", title: "since " + i.state }, i.state === "ready" ? ago(i.since) : ""),
          el("td", { "data-field": "restarts" }, i.restarts),
          el("td", { class: "err", "data-field": "last_error", title: i.last_error || "" }, i.last_error || "")));
      parts.push(el("h3", {}, app),
        scroll("instances of " + app, el("table", { "data-instances-of": app },
          el("thead", {}, el("tr", {}, ...["node", "instance", "digest", "state", "pid", "port", "uptime", "restarts", "last error"].map((h) => el("th", {}, h)))),
          el("tbody", {}, ...rows))));
    }
    if (!parts.length) parts.push(el("p", { class: "muted" }, "No instances."));
    box.replaceChildren(...parts);
  }

  function remoteRow(i) {
    let port = "";
    try {
      port = new URL(i.url).port;
    } catch (e) {
      port = "";
    }
    return el("tr", { "data-remote": "1", "data-app": i.app, "data-node": i.node_id, "data-state": "serving" },
      el("td", { "data-field": "node" }, i.node_id),
      el("td", { class: "muted" }, "on another host"),
      el("td", { class: "mono", title: i.digest || "" }, short(i.digest)),
      stateCell("serving"),
      el("td", {}, ""),
      el("td", { "data-field": "port", title: i.url }, port),
      el("td", { class: "muted", colSpan: 3 }, "seen through its endpoint " + i.url + "; pid, uptime and restarts are on that host (mesh status there)"));
  }

  function renderRollouts(doc) {
    const box = document.getElementById("rollouts");
    const parts = [];
    const active = (doc.status.apps || []).filter((a) => a.rollout);
    if (active.length) {
      parts.push(el("h3", {}, "In progress"));
      parts.push(scroll("rollouts in progress", el("table", { id: "rollouts-active" },
        el("thead", {}, el("tr", {}, ...["rollout", "app", "digest", "state", "progress", "started", "who", "detail"].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...active.map((a) => rolloutRow(a.rollout))))));
    } else if (!(doc.roles || ["control"]).includes("control")) {
      parts.push(el("p", { class: "muted", id: "no-control" },
        "This process (" + doc.roles.join(", ") + ") does not run rollouts: the cluster's control process does, and a console on a process running the control and edge roles together (mesh run -roles control,edge) shows them."));
    } else {
      parts.push(el("p", { class: "muted", id: "no-active-rollouts" }, "No rollout in progress."));
    }
    const hist = doc.history || {};
    const rows = [];
    const inProgress = new Set(active.map((a) => a.rollout.id)); // shown above
    for (const app of Object.keys(hist).sort()) {
      for (const r of hist[app] || []) if (!inProgress.has(r.id)) rows.push(rolloutRow(r));
    }
    if (rows.length) {
      parts.push(el("h3", {}, "History"));
      parts.push(scroll("rollout history", el("table", { id: "rollouts-history" },
        el("thead", {}, el("tr", {}, ...["rollout", "app", "digest", "state", "progress", "started", "who", "detail"].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...rows))));
    }
    box.replaceChildren(...parts);
  }

  function rolloutRow(r) {
    return el("tr", { "data-rollout": r.id, "data-state": r.state, "data-app": r.app, "data-digest": r.digest },
      el("td", { class: "mono" }, r.id),
      el("td", {}, r.app),
      el("td", { class: "mono", title: r.digest }, short(r.digest) + (r.version ? " (" + r.version + ")" : "")),
      stateCell(r.state),
      el("td", {}, ...progress(r.progress)),
      el("td", {}, ago(r.started) + " ago"),
      el("td", {}, r.who || ""),
      el("td", { class: "err", title: r.detail || "" }, r.detail || ""));
  }

  function renderPlugins(st) {
    const body = document.querySelector("#plugins tbody");
    body.replaceChildren(...(st.plugins || []).map((p) =>
      el("tr", { "data-plugin": p.kind + "/" + p.name, "data-state": p.state },
        el("td", {}, p.kind), el("td", {}, p.name), stateCell(p.state), el("td", {}, p.pid || ""),
        el("td", { "data-field": "restarts" }, p.restarts), el("td", {}, ago(p.since)))));
  }

  function renderSites(doc) {
    const sites = doc.sites || [];
    document.querySelector("#sites tbody").replaceChildren(...sites.map((s) =>
      el("tr", { "data-site": s.id },
        el("td", {}, s.id), el("td", {}, (s.domains || []).join(", ")),
        el("td", { class: "mono" }, s.app ? "app " + s.app : "static " + short(s.snapshot)),
        el("td", {}, ago(s.updated) + " ago"))));
    document.getElementById("no-sites").hidden = sites.length > 0;
  }

  function render() {
    if (!snapshot) return;
    const st = snapshot.status;
    document.getElementById("summary").textContent =
      plural((st.nodes || []).length, "node", "nodes") + ", " + plural((st.apps || []).length, "app", "apps") + ", up " + ago(st.started);
    renderAttention(snapshot);
    renderApps(st);
    renderInstances(st);
    renderRollouts(snapshot);
    renderPlugins(st);
    renderSites(snapshot);
    document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
  }

  // renderAttention lists, above everything, what needs a look: apps
  // short of instances, failed instances, plugins not running, rollouts
  // that failed.
  function renderAttention(doc) {
    const st = doc.status;
    const items = [];
    const lastError = (app) => {
      const failed = (st.instances || []).filter((i) => i.app === app && i.state === "failed" && i.last_error);
      return failed.length ? failed[failed.length - 1].last_error : "";
    };
    for (const a of st.apps || []) {
      if (a.degraded) {
        const why = lastError(a.name);
        items.push(el("li", { "data-app": a.name }, el("b", {}, a.name), " is degraded: " + a.ready + " of " + a.desired + " ready, fewer endpoints than its min of " + a.min + (why ? ". Last error: " + why : "")));
      } else if (!a.rollout && a.desired > 0 && a.ready < a.desired) {
        items.push(el("li", { "data-app": a.name }, el("b", {}, a.name), " has " + a.ready + " of " + a.desired + " instances ready"));
      }
    }
    for (const p of st.plugins || []) {
      if (p.state !== "running") {
        items.push(el("li", { "data-plugin": p.kind + "/" + p.name }, el("b", {}, "plugin " + p.kind + "/" + p.name), " is " + p.state + (p.last_error ? ": " + p.last_error : "")));
      }
    }
    for (const app of Object.keys(doc.history || {}).sort()) {
      const r = (doc.history[app] || [])[0]; // the newest
      if (r && (r.state === "failed" || r.state === "reverted")) {
        items.push(el("li", { "data-rollout": r.id }, el("b", {}, "rollout " + r.id), " of " + app + " " + r.state + (r.detail ? ": " + r.detail : "")));
      }
    }
    const box = document.getElementById("attention");
    box.querySelector("ul").replaceChildren(...items);
    box.hidden = items.length === 0;
  }

  // problem says, at the top of the page, why what it shows may be stale;
  // null clears it.
  function problem(msg, link) {
    const box = document.getElementById("problem");
    if (!msg) {
      box.hidden = true;
      return;
    }
    box.replaceChildren(msg, link ? el("a", { href: link.href }, link.text) : "");
    box.hidden = false;
  }

  class HTTPError extends Error {
    constructor(path, status) {
      super(path + ": HTTP " + status);
      this.status = status;
    }
  }

  async function getJSON(path) {
    const r = await fetch(api + path, { cache: "no-store", credentials: "same-origin" });
    if (!r.ok) throw new HTTPError(path, r.status);
    return r.json();
  }

  async function refresh() {
    if (inFlight) return;
    inFlight = true;
    try {
      const [doc, m] = await Promise.all([getJSON("snapshot"), getJSON("metrics")]);
      snapshot = doc;
      series = m || { apps: {} };
      render();
      lostSince = null;
      problem(null);
    } catch (e) {
      setLive("reconnecting");
      if (e.status === 401) {
        problem("Signed out: the mesh wants its control token again. ", { href: "/console/login", text: "Sign in" });
      } else {
        lostSince = lostSince || new Date();
        problem("Cannot reach the mesh since " + lostSince.toLocaleTimeString() + " (" + e.message + "); this page shows what it last said and keeps trying.");
      }
    } finally {
      inFlight = false;
    }
  }

  // soon refreshes shortly after a burst of events, once.
  function soon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      refresh();
    }, 100);
  }

  function setLive(s) {
    const p = document.getElementById("live");
    p.dataset.live = s;
    p.textContent = s;
  }

  function eventText(e) {
    const parts = [new Date(e.time).toLocaleTimeString(), e.type];
    for (const k of ["app", "node", "instance", "plugin", "rollout", "state"]) if (e[k]) parts.push(k + "=" + e[k]);
    if (e.digest) parts.push("digest=" + short(e.digest));
    if (e.pid) parts.push("pid=" + e.pid);
    if (e.desired) parts.push("ready=" + (e.ready || 0) + "/" + e.desired);
    if (e.detail) parts.push("(" + e.detail + ")");
    return parts.join(" ");
  }

  function follow() {
    const list = document.getElementById("events");
    const es = new EventSource(api + "events?follow=1&tail=50");
    es.onopen = () => setLive("live");
    es.onerror = () => {
      setLive("reconnecting");
      // EventSource reconnects by itself after a dropped connection, but
      // gives up on an answer that is not a stream (a 401, a proxy's 502):
      // start over then.
      if (es.readyState === EventSource.CLOSED) setTimeout(follow, 3000);
    };
    es.onmessage = (m) => {
      let e;
      try {
        e = JSON.parse(m.data);
      } catch (err) {
        return;
      }
      const [run, seq] = (m.lastEventId || "").split(".");
      if (e.seq && run && run === lastRun && Number(seq) <= lastSeq) return; // seen (a new stream's history)
      if (e.seq && run) {
        if (lastRun && run !== lastRun) list.prepend(el("li", { class: "muted", "data-type": "mesh.restarted" }, "— the mesh restarted: its events start again at 1 —"));
        lastRun = run;
        lastSeq = Number(seq);
      }
      list.prepend(el("li", { "data-type": e.type, "data-seq": e.seq }, eventText(e)));
      while (list.children.length > keepEvents) list.lastChild.remove();
      soon();
    };
  }

  document.addEventListener("DOMContentLoaded", () => {
    refresh();
    setInterval(refresh, snapshotEvery);
    follow();
  });
})();
