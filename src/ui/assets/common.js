// cfgledger web UI: what every page shares. No framework: DOM building with textContent only (markup is never
// parsed from strings), `fetch` to the REST API with the session's CSRF token, times in the browser's zone, and the
// watch stream. The Content-Security-Policy forbids inline script and eval; this file needs neither.
"use strict";

const cfg = (() => {
  const meta = (name) => {
    const m = document.querySelector(`meta[name="${name}"]`);
    return m ? m.getAttribute("content") : "";
  };

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  /** A call to the REST API: JSON in and out, the CSRF token on every change. Never throws for an HTTP
   *  status; a network failure comes back as status 0 with a message saying what to do. */
  async function api(method, url, body, headers) {
    const h = Object.assign({ Accept: "application/json" }, headers || {});
    if (method !== "GET" && method !== "HEAD") h["X-CSRF-Token"] = meta("csrf-token");
    let payload;
    if (body !== undefined && body !== null) {
      if (typeof body === "string" || body instanceof Blob || body instanceof FormData) payload = body;
      else {
        payload = JSON.stringify(body);
        h["Content-Type"] = "application/json";
      }
    }
    let response;
    try {
      response = await fetch(url, { method, headers: h, body: payload, credentials: "same-origin" });
    } catch (e) {
      return { ok: false, status: 0, body: null, headers: new Headers(), message: "The server cannot be reached. Check your connection, then try again." };
    }
    const type = response.headers.get("content-type") || "";
    let parsed = null;
    if (type.includes("json")) parsed = await response.json().catch(() => null);
    else parsed = await response.text().catch(() => null);
    let message = "";
    if (!response.ok) {
      message = (parsed && parsed.error && parsed.error.message) || `The server answered ${response.status}.`;
      if (response.status === 401) {
        message = `${message} Your session has ended: reload the page to log in again.`;
      }
    }
    return { ok: response.ok, status: response.status, body: parsed, headers: response.headers, message };
  }

  /** Shows every `<time datetime>` under `root` in the browser's time zone, keeping UTC on hover. */
  function localTimes(root) {
    for (const t of (root || document).querySelectorAll("time[datetime]")) {
      const d = new Date(t.getAttribute("datetime"));
      if (Number.isNaN(d.getTime())) continue;
      t.textContent = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
      t.title = `${t.getAttribute("datetime")} (UTC)`;
    }
  }

  function time(rfc3339) {
    const t = el("time", { datetime: rfc3339, title: `${rfc3339} (UTC)` }, rfc3339);
    localTimes(el("span", {}, t));
    return t;
  }

  /** Says something in the page's live region (read by screen readers, shown briefly). */
  function announce(text) {
    const region = document.getElementById("live-status");
    if (!region) return;
    region.textContent = text;
    region.classList.add("shown");
    clearTimeout(announce.timer);
    announce.timer = setTimeout(() => region.classList.remove("shown"), 6000);
  }

  /** A JSON value as a table cell shows it. */
  function valueText(v) {
    if (v === null || v === undefined) return "";
    return typeof v === "string" ? v : JSON.stringify(v);
  }

  /** Where a `JSON.parse` error points in `text`: {line, col}, from the message's line and column or its
   *  position (the engines word it differently). */
  function jsonPosition(text, message) {
    let m = /line (\d+) column (\d+)/i.exec(message);
    if (m) return { line: Number(m[1]), col: Number(m[2]) };
    m = /position (\d+)/i.exec(message);
    const pos = m ? Number(m[1]) : text.length;
    const before = text.slice(0, pos).split("\n");
    return { line: before.length, col: before[before.length - 1].length + 1 };
  }

  /** Follows the watch stream (`params` as its query); `onEvent(data)` for each change. The browser
   *  reconnects on its own, resuming after the last event it saw. */
  function watch(params, onEvent) {
    const url = `/admin/config/watch?${new URLSearchParams(params)}`;
    const source = new EventSource(url, { withCredentials: true });
    // The page says whether it is following the log (`html[data-live]`, and the header's indicator).
    const state = (on) => {
      document.documentElement.dataset.live = on ? "on" : "off";
      const badge = document.getElementById("live-indicator");
      if (badge) {
        badge.hidden = false;
        badge.textContent = on ? "Live" : "Reconnecting…";
        badge.className = on ? "badge good" : "badge bad";
      }
    };
    source.onopen = () => state(true);
    source.onerror = () => state(false);
    source.onmessage = (e) => {
      try {
        onEvent(JSON.parse(e.data));
      } catch (err) {
        console.error("watch event", err);
      }
    };
    // A page left for another stays in the browser's back-forward cache with its stream open; six of them
    // would take every connection the browser allows this server.
    window.addEventListener("pagehide", () => source.close());
    window.addEventListener("pageshow", (e) => {
      if (e.persisted) location.reload();
    });
    source.addEventListener("end", (e) => {
      source.close();
      state(false);
      announce(`Live updates stopped: ${e.data}. Reload the page to resume.`);
    });
    return source;
  }

  document.addEventListener("DOMContentLoaded", () => localTimes(document));

  return {
    el,
    api,
    time,
    localTimes,
    announce,
    valueText,
    jsonPosition,
    watch,
    csrf: () => meta("csrf-token"),
    role: () => meta("cfgledger-role"),
  };
})();
