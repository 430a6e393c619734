"use strict";
// Shared by the console pages: messages, the CSRF token, a JSON fetch helper, times in the
// console's zone, the console stream, the alarm cue and an alert's escalation.
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
    if (response.status === 401) { toSignIn(); throw new Error("signed out"); }
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
  // How long ago a time was, in words: "40 s geleden", "12 min geleden", "2 uur geleden".
  function ago(iso, now = Date.now()) {
    const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
    const [key, n] = s < 60 ? ["ago_seconds", s] : s < 3600 ? ["ago_minutes", Math.floor(s / 60)]
      : ["ago_hours", Math.floor(s / 3600)];
    return t(key).replace("{n}", String(n));
  }
  // A position fix older than this is marked as old on the map (it may no longer be where
  // the person is).
  const STALE_FIX_S = 180;
  function staleFix(iso, now = Date.now()) {
    return !iso || now - Date.parse(iso) > STALE_FIX_S * 1000;
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
  // The console stream (`/api/v1/stream` + `query`): each event about alerts and cases to
  // `onEvent`, connected again with back-off when it closes; its state shown in #link-state:
  // "live", "delayed" (the server says events may not arrive now) or "offline". `onRead` is
  // called whenever the page should read what it shows again: on (re)connecting, and when the
  // server says events may have been lost (`stream.resync`). Returns `isLive()`.
  // The server closes the stream with 4401 once the session no longer admits it (signed out
  // elsewhere, expired, disabled): the page goes to sign-in, it does not reconnect for ever.
  const SIGNED_OUT = 4401;
  function toSignIn() { window.location.href = "/console/login"; }
  function follow(query, onEvent, onRead) {
    const linkState = document.getElementById("link-state");
    function show(state) { linkState.dataset.state = state; linkState.textContent = t(state); }
    let backoff = 500;
    function connect() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const ws = new WebSocket(`${scheme}://${location.host}/api/v1/stream${query}`);
      ws.onopen = () => { backoff = 500; show("live"); onRead(); };
      ws.onmessage = (message) => {
        const event = JSON.parse(message.data);
        if (event.event === "stream.delayed") show("delayed");
        else if (event.event === "stream.resync") { show("live"); onRead(); }
        else onEvent(event);
      };
      ws.onclose = (closed) => {
        if (closed.code === SIGNED_OUT) { toSignIn(); return; }
        show("offline");
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 10000);
      };
    }
    connect();
    return () => linkState.dataset.state === "live";
  }
  // The alarm cue (#alarm-sound on the page) for an alert. Test and monitoring hook: how often
  // it was sounded, and for which alerts.
  // `refused`: how often the browser refused to play it (its autoplay policy, until the
  // operator has clicked on the page): the sound-off banner then asks her to click.
  window.swAlarm = { count: 0, alerts: [], refused: 0 };
  let owed = false;  // a cue the browser refused, played at her click on the banner
  function soundBanner() {
    let banner = document.getElementById("sound-off");
    if (banner) return banner;
    banner = el("button", { type: "button", id: "sound-off", class: "sound-off", hidden: true },
                t("sound_off"));
    banner.setAttribute("role", "alert");
    banner.addEventListener("click", () => enableSound());
    document.querySelector("main").prepend(banner);
    // Any click of hers on the page lets it play sound: the banner goes at once.
    document.addEventListener("click", (event) => {
      if (!banner.hidden && event.target !== banner) enableSound();
    }, true);
    return banner;
  }
  function soundRefused() {
    window.swAlarm.refused += 1;
    soundBanner().hidden = false;
  }
  function soundPlays() {
    owed = false;
    soundBanner().hidden = true;
  }
  // Plays the cue; the banner shows while the browser refuses it and goes once it plays.
  function play(sound) {
    const played = sound.play();
    if (!played || !played.then) return;
    played.then(soundPlays, (e) => {
      if (e && e.name === "NotAllowedError") { owed = true; soundRefused(); }
    });
  }
  // Whether the browser lets the page play sound now: the cue's sound played at volume 0 (the
  // browser's policy judges an unmuted play, whatever its volume) and stopped at once, on an
  // element of its own, so that it never stops or mutes an alarm that starts meanwhile.
  function probeSound(sound) {
    if (!sound.paused) return;  // the cue is playing: sound is on
    const probe = new Audio(sound.currentSrc || sound.src);
    probe.volume = 0;
    const played = probe.play();
    if (!played || !played.then) return;
    played.then(() => { probe.pause(); soundPlays(); }, (e) => {
      if (e && e.name === "NotAllowedError") soundRefused();
    });
  }
  // Her click (a user gesture) lets the page play sound: the refused cue plays now, else the
  // probe confirms sound is on.
  function enableSound() {
    const sound = document.getElementById("alarm-sound");
    if (!sound) return;
    if (owed) { sound.currentTime = 0; play(sound); return; }
    probeSound(sound);
  }
  function soundAlarm(alertId) {
    const sound = document.getElementById("alarm-sound");
    window.swAlarm.count += 1;
    window.swAlarm.alerts.push(alertId);
    sound.dataset.played = String(window.swAlarm.count);
    sound.currentTime = 0;
    play(sound);
  }
  // A page opened without a click of hers (a new tab, a reload after a while) may not play
  // sound: probed when it loads, so the banner says so before an alarm is missed.
  if (document.getElementById("alarm-sound")) {
    window.addEventListener("load", () => probeSound(document.getElementById("alarm-sound")));
  }
  // The cue stops when the alert it last sounded for no longer calls (acknowledged, closed).
  function silence(alertId) {
    const alerts = window.swAlarm.alerts;
    if (alerts[alerts.length - 1] === alertId) document.getElementById("alarm-sound").pause();
  }

  // Escalation (docs/console.md). An alert's `escalation` is the last step of its escalation
  // carried out after the first notification: in the API's documents, and in the event
  // `alert.escalated` beside the document. It calls for the desk while it stands: a step of
  // the chain until someone acknowledges the alert, a re-alert while the alert stays open.
  const OPEN = new Set(["new", "acknowledged", "dispatched"]);
  function escalationOf(doc) {
    const e = doc && doc.escalation;
    if (!e || !Number.isInteger(e.step) || e.step < 1) return null;
    const stands = e.action === "re_alert" ? OPEN.has(doc.state) : doc.state === "new";
    return stands ? e : null;
  }
  // "escalated: step 2, desk supervisor"
  function escalationText(e) {
    return `${t("escalation_" + e.action)}: ${t("escalation_step")} ${e.step}, `
      + t("escalation_target_" + e.target);
  }
  // The later of two escalations of one alert: its steps only go up, and a read begun before
  // an `alert.escalated` event may answer after it.
  function laterEscalation(a, b) {
    if (!a || !Number.isInteger(a.step)) return b || null;
    if (!b || !Number.isInteger(b.step)) return a;
    return b.step >= a.step ? b : a;
  }
  // An event's alert document with the step the event carries (`alert.escalated`).
  function withEscalation(event) {
    const e = event.escalation;
    if (!e || !Number.isInteger(e.step)) return event.alert;
    return Object.assign({}, event.alert,
      { escalation: { step: e.step, action: e.action, target: e.target } });
  }
  // What an alert calls for, as a level: -1 nothing, 0 a new unacknowledged P1, n the
  // escalation step n standing. `calls(cued, doc)`: true once for each level higher than the
  // one `cued` (a Map per page) holds for the alert, which it then holds: the alarm sounds
  // for a new P1 and again at each step it escalates, once each.
  function cueLevel(doc) {
    const e = escalationOf(doc);
    if (e) return e.step;
    return doc.priority === "P1" && doc.state === "new" ? 0 : -1;
  }
  function calls(cued, doc) {
    const level = cueLevel(doc);
    const known = cued.has(doc.alert_id) ? cued.get(doc.alert_id) : -1;
    if (level <= known) return false;
    cued.set(doc.alert_id, level);
    return true;
  }
  return { t, api, el, age, ago, staleFix, csrf, localTime, follow, soundAlarm, silence,
           escalationOf, escalationText, laterEscalation, withEscalation, cueLevel, calls };
})();
