"use strict";
// Shared by the console pages: messages, the CSRF token and a JSON fetch helper.
window.sw = (function () {
  const messages = JSON.parse(document.getElementById("sw-messages").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  function t(key) { return messages[key] || key; }
  async function api(method, path, body) {
    const options = { method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (method !== "GET") {
      options.headers["X-CSRF-Token"] = csrf;
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body || {});
    }
    const response = await fetch(path, options);
    if (response.status === 401) { window.location.href = "/console/login"; throw new Error("signed out"); }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) { const e = new Error(data.detail || response.statusText); e.status = response.status; throw e; }
    return data;
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
    return node;
  }
  function age(iso) {
    const s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
    const m = Math.floor(s / 60), h = Math.floor(m / 60);
    const pad = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${pad(m % 60)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
  }
  // A time as the pages show it (backend/console/clock.py): in the console's zone, with the
  // zone's abbreviation, "2026-12-06 01:20 CET" (date false: "01:20:05 CET").
  const timeZone = document.documentElement.dataset.timezone || undefined;
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone, timeZoneName: "short", hourCycle: "h23", year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  function localTime(value, date = true) {
    const p = Object.fromEntries(
      parts.formatToParts(new Date(value)).map((x) => [x.type, x.value]));
    return date ? `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${p.timeZoneName}`
      : `${p.hour}:${p.minute}:${p.second} ${p.timeZoneName}`;
  }
  return { t, api, el, age, csrf, localTime };
})();
