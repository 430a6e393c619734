"use strict";
// The alert view: map with vector overlays (works with no tiles), actions through the API.
// While the alert is open the page follows it: its state, police delivery and timeline as the
// stream reports changes (by anyone), its positions read again every position_refresh_s while
// the tab is visible (each read audited); once it closes, the positions are read once more,
// and withheld if no alert of the case is open. A new P1 elsewhere sounds here too. An
// escalation of this alert is shown and sounds (each step once) until it is acknowledged, and
// one of another alert sounds and is named in the banner.
(function () {
  const { t, api, el, ago, staleFix, localTime, follow, soundAlarm, silence, escalationOf,
          escalationText, laterEscalation, withEscalation, calls } = window.sw;
  const OPEN = new Set(["new", "acknowledged", "dispatched"]);
  const view = document.getElementById("alert-view");
  const alertId = view.dataset.alertId;
  const tileUrl = view.dataset.tileUrl;
  const refreshS = Number(view.dataset.positionRefreshS) || 10;
  const delayedResyncS = Number(view.dataset.delayedResyncS) || 5;
  const distanceEl = document.getElementById("distance");
  const reasonForm = document.getElementById("reason-form");
  // The trail released without a reason through another urgent alert of the case reaches back
  // only as far as that alert's own (`trail_clipped`): said, with the way to the rest.
  const trailNote = document.getElementById("trail-clipped");
  const errorEl = document.getElementById("action-error");
  const infoEl = document.getElementById("action-info");
  const stateEl = document.getElementById("alert-state");
  const policeEl = document.getElementById("police-delivery");
  const timelineEl = document.getElementById("timeline-list");
  const banner = document.getElementById("p1-banner");
  const escalationEl = document.getElementById("escalation-mark");
  // Per alert, what the alarm last sounded for (sw.calls). This alert is noted at the first
  // read without a sound (it is the one she opened), and sounds at each step it escalates.
  const cued = new Map();
  let escalation = null;  // this alert's, the latest known

  const map = L.map("map", { zoomControl: true, attributionControl: Boolean(tileUrl) });
  map.setView([52.1, 5.3], 7);
  if (tileUrl) L.tileLayer(tileUrl, { maxZoom: 19, attribution: view.dataset.tileAttribution }).addTo(map);
  const zones = L.featureGroup().addTo(map);  // drawn once, withheld with the positions
  const overlay = L.featureGroup().addTo(map);  // the positions, drawn again at each read
  window.swMap = { map, overlay, drawn: 0, reads: 0, zones: 0 };
  let fitted = false;  // the view is fitted to the first positions, then left to the operator

  const STYLE = {
    victim: { color: "#1565c0", fillColor: "#42a5f5" },
    offender: { color: "#b71c1c", fillColor: "#ef5350" },
  };

  // A marker's label: who, how long ago the fix was taken ("12 min geleden"), its accuracy,
  // and "old position" once it is older than a few minutes (it may be elsewhere by now).
  function fixLabel(label, last, now = Date.now()) {
    const parts = [label];
    if (last.at) parts.push(ago(last.at, now));
    if (last.acc_m) parts.push(`${t("accuracy")} ${Math.round(last.acc_m)} m`);
    if (last.at && staleFix(last.at, now)) parts.push(t("fix_old").toUpperCase());
    return parts.join(" \u00b7 ");
  }
  const labelled = [];  // [tooltip, label, last]: their ages kept current (ageLabels)
  function ageLabels() {
    const now = Date.now();
    for (const [tooltip, label, last] of labelled) {
      tooltip.setContent(fixLabel(label, last, now));
      const node = tooltip.getElement();
      if (node && last.at) node.classList.toggle("fix-stale", staleFix(last.at, now));
    }
  }
  setInterval(ageLabels, 15_000);

  function drawTrack(track, label) {
    if (!track) return null;
    const base = STYLE[track.role] || STYLE.victim;
    if (track.trail && track.trail.length > 1) {
      L.polyline(track.trail.map((p) => [p.lat, p.lon]),
                 { color: base.color, weight: 3, opacity: 0.7 })
        .addTo(overlay);
    }
    const last = track.last;
    if (!last) return null;
    const stale = Boolean(last.at) && staleFix(last.at);
    const style = stale
      ? Object.assign({}, base, { fillColor: "#bdbdbd", dashArray: "3 3" }) : base;
    if (last.acc_m) {
      L.circle([last.lat, last.lon], { radius: last.acc_m, color: style.color, weight: 1,
                                       fillColor: style.fillColor, fillOpacity: 0.15 }).addTo(overlay);
    }
    const marker = L.circleMarker([last.lat, last.lon], {
      radius: 8, color: style.color, weight: 2, fillColor: style.fillColor, fillOpacity: 0.9,
      dashArray: style.dashArray || null })
      .bindTooltip(fixLabel(label, last), {
        permanent: true, direction: "right",
        className: `fix fix-${track.role}${stale ? " fix-stale" : ""}` })
      .addTo(overlay);
    labelled.push([marker.getTooltip(), label, last]);
    window.swMap.drawn += 1;
    return [last.lat, last.lon];
  }

  // The case's zones (exclusion zones, protected places), read where the viewer may read them:
  // dispatchers and case directors, each read audited as every read of a measure is. The alert
  // document does not carry them: it also goes to the police feeds and webhooks, and a
  // protected place is where the victim lives. Police see the alert without them. A dispatcher
  // reads them as she reads the positions: while an alert of the case is open, else with the
  // reason she gives for the positions (`reason`), never one made up here.
  let zonesCase = null;
  let zonesDrawn = false;
  async function drawZones(alertDoc, reason) {
    if (alertDoc) zonesCase = alertDoc.case && alertDoc.case.id;
    if (!zonesCase || zonesDrawn) return;
    const query = reason ? `?reason=${encodeURIComponent(reason)}` : "";
    let collection;
    try {
      collection = await api("GET", `/api/v1/cases/${zonesCase}/measures${query}`);
    } catch (e) {
      return;  // not the viewer's to read (or not without a reason)
    }
    zonesDrawn = true;
    const style = { color: "#6a1b9a", weight: 2, fillOpacity: 0.08, dashArray: "6 4" };
    for (const f of collection.features || []) {
      if (!f.geometry) continue;  // a contact ban: no place of its own
      const p = f.properties || {};
      const [lon, lat] = f.geometry.type === "Point" ? f.geometry.coordinates : [];
      const layer = f.geometry.type === "Point"
        ? L.circle([lat, lon], { radius: Number(p.radius_m) || 0, ...style })
        : L.geoJSON(f.geometry, { style });
      layer.bindTooltip(el("span", {}, String(p.kind || "zone"))).addTo(zones);  // text only
      window.swMap.zones += 1;
    }
  }

  // Withheld with the positions once no alert of the case is open (drawn again with a reason).
  function clearZones() {
    zones.clearLayers();
    window.swMap.zones = 0;
    zonesDrawn = false;
  }

  function clearPositions() {
    overlay.clearLayers();
    labelled.length = 0;
    window.swMap.drawn = 0;
    distanceEl.textContent = "";
  }

  async function loadPositions(reason) {
    const query = reason ? `?reason=${encodeURIComponent(reason)}` : "";
    let doc;
    try {
      doc = await api("GET", `/api/v1/alerts/${alertId}/positions${query}`);
    } catch (e) {
      if (e.status === 403) {
        clearPositions(); clearZones(); trailNote.hidden = true; reasonForm.hidden = false;
        return;
      }
      throw e;
    }
    reasonForm.hidden = true;
    trailNote.hidden = !doc.trail_clipped;
    clearPositions();
    window.swMap.reads += 1;
    const v = drawTrack(doc.victim, t("victim"));
    const o = drawTrack(doc.offender, t("offender"));
    if (v && o) {
      L.polyline([v, o], { color: "#333", weight: 1, dashArray: "4 4" }).addTo(overlay);
    }
    distanceEl.textContent = doc.distance_m != null
      ? distanceText(doc) : (v ? "" : t("no_position"));
    distanceEl.dataset.mixedTimes = doc.distance_m != null && mixedTimes(doc) ? "1" : "";
    if (!fitted && overlay.getLayers().length) {
      const bounds = overlay.getBounds();
      if (zones.getLayers().length) bounds.extend(zones.getBounds());
      map.fitBounds(bounds.pad(0.3), { maxZoom: 17 });
      fitted = true;
    }
  }

  // The distance, and when the two fixes were taken at different times (more than a minute
  // apart) the times of each: it is then not how far apart they are now.
  const SAME_TIME_MS = 60_000;
  function mixedTimes(doc) {
    const v = doc.victim && doc.victim.last, o = doc.offender && doc.offender.last;
    if (!v || !o) return false;
    if (!v.at || !o.at) return true;  // a fix of unknown time: not known to be simultaneous
    return Math.abs(Date.parse(v.at) - Date.parse(o.at)) > SAME_TIME_MS;
  }
  function distanceText(doc) {
    const m = doc.distance_m;
    const metres = m >= 1000 ? (m / 1000).toFixed(2) + " km" : Math.round(m) + " m";
    let text = `${t("distance")}: ${metres}`;
    if (mixedTimes(doc)) {
      const when = (fix) => (fix.at ? localTime(fix.at, false) : t("unknown"));
      text += ` (${t("distance_times").replace("{victim}", when(doc.victim.last))
        .replace("{offender}", when(doc.offender.last))})`;
    }
    return text;
  }

  function timelineEntry(e) {
    const item = el("li", { "data-kind": e.kind }, el("time", {}, localTime(e.at, false)),
                    ` ${e.actor}: ${t("event_" + e.kind)}`);
    if (e.to_state) item.append(` \u2192 ${t("state_" + e.to_state)}`);
    if (e.detail && e.detail.state) item.append(` (${t("delivery_" + e.detail.state)})`);
    if (e.kind === "escalated" && e.detail && Number.isInteger(e.detail.step)) {
      item.append(` (${escalationText(e.detail)})`);
    }
    if (e.detail && e.detail.note) item.append(" ", el("q", {}, e.detail.note));
    return item;
  }

  // What the page shows of the alert besides the map, from its document (the API's or the
  // stream's, which has no timeline).
  function show(doc) {
    const wasOpen = OPEN.has(stateEl.dataset.state);
    stateEl.textContent = t("state_" + doc.state);
    stateEl.dataset.state = doc.state;
    const d = doc.police_delivery || "";
    if (d !== policeEl.dataset.police) {
      policeEl.dataset.police = d;
      policeEl.replaceChildren(
        d === "unreachable" || d === "rejected"
          ? el("p", { class: "police-alarm", role: "alert" }, t("police_not_reached"))
          : d ? el("p", {}, `${t("police_delivery")}: ${t("police_state_" + d)}`) : "");
    }
    if (doc.timeline) timelineEl.replaceChildren(...doc.timeline.map(timelineEntry));
    updateButtons();
    showEscalation(doc);
    if (wasOpen && !OPEN.has(doc.state)) loadPositions().catch(showError);  // withheld now?
  }

  // "escalated: step 2, desk supervisor" while the escalation stands; a step she has not yet
  // heard sounds (none at the first read); acknowledging stops the cue.
  function showEscalation(doc) {
    escalation = laterEscalation(escalation, doc.escalation);
    const current = Object.assign({}, doc, { alert_id: alertId, escalation });
    const e = escalationOf(current);
    escalationEl.hidden = !e;
    escalationEl.textContent = e ? escalationText(e) : "";
    escalationEl.dataset.step = e ? String(e.step) : "";
    escalationEl.dataset.action = e ? e.action : "";
    const first = !cued.has(alertId);
    if (calls(cued, current) && !first) soundAlarm(alertId);
    if (!cued.has(alertId)) cued.set(alertId, -1);  // read once: later steps sound
    if (!e) silence(alertId);
  }

  // The alert without its position (nothing read, nothing audited): state and timeline.
  let lastRead = Date.now();
  async function reread() {
    lastRead = Date.now();
    const doc = await api("GET", `/api/v1/alerts/${alertId}?with_location=false`);
    show(doc);
    return doc;
  }

  document.getElementById("trail-more").addEventListener("click", () => {
    trailNote.hidden = true;
    reasonForm.hidden = false;
    reasonForm.querySelector("input[name=reason]").focus();
  });
  // A reason given holds for this page's later reads of the positions too (each audited with
  // it): without it the next refresh took the trail back, or the positions away, 10 s later.
  let givenReason = null;
  reasonForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const reason = new FormData(reasonForm).get("reason");
    givenReason = reason;
    loadPositions(reason).catch(showError);
    drawZones(null, reason).catch(showError);
  });

  function showError(e) { errorEl.hidden = false; errorEl.textContent = `${t("error")}: ${e.message}`; }

  // The actions the alert's state allows (backend/alerts/lifecycle.py): the others are
  // disabled, as are all while one is on its way.
  const ALLOWED = { acknowledge: ["new"], dispatch: ["new", "acknowledged"],
                    resolve: [...OPEN], "false-alarm": [...OPEN] };
  const TARGET = { acknowledge: "acknowledged", dispatch: "dispatched", resolve: "resolved",
                   "false-alarm": "false_alarm" };
  const buttons = [...document.querySelectorAll("button[data-action]")];
  const actor = view.dataset.actor || "";  // who she is, as the timeline names her
  let busy = false;
  function updateButtons() {
    const state = stateEl.dataset.state;
    for (const b of buttons) {
      b.disabled = busy || !(ALLOWED[b.dataset.action] || []).includes(state);
    }
  }
  // Pure: whether her action changed nothing, from the state the page knew when she clicked
  // and the alert read after it: it was there already, or the transition that brought it
  // there is someone else's (a colleague was first).
  function changedNothing(action, before, doc) {
    const target = TARGET[action];
    if (before === target) return true;
    const moved = (doc.timeline || [])
      .filter((e) => e.kind === "transition" && e.to_state === target);
    return moved.length === 0 || moved[moved.length - 1].actor !== actor;
  }
  // A refusal in her language, by the answer's status and the action (never the server's
  // English text): the alert moved on (409, its state now named), or it was not carried out.
  function refusal(action, status, state) {
    if (status === 409) {
      return t("action_conflict_" + action.replace("-", "_"))
        .replace("{state}", t("state_" + state));
    }
    return t("action_failed");
  }
  function inform(text) { infoEl.hidden = !text; infoEl.textContent = text || ""; }

  async function act(button) {
    const action = button.dataset.action;
    const noteEl = document.getElementById("note");
    const note = noteEl.value.trim();
    const before = stateEl.dataset.state;
    busy = true;
    updateButtons();
    errorEl.hidden = true;
    inform("");
    try {
      let doc;
      try {
        doc = await api("POST", `/api/v1/alerts/${alertId}/${action}`, note ? { note } : {});
      } catch (e) {
        // The note stays typed; the page reads where the alert stands now.
        const now = await reread().catch(() => null);
        errorEl.hidden = false;
        errorEl.textContent = refusal(action, e.status, now ? now.state : stateEl.dataset.state);
        return;
      }
      noteEl.value = "";  // kept on the timeline: the transition's, or a note of its own
      show(doc);
      const read = await reread().catch(() => doc);
      if (changedNothing(action, before, read)) inform(t("action_already_done"));
    } finally {
      busy = false;
      updateButtons();
    }
  }
  for (const button of buttons) button.addEventListener("click", () => act(button));
  updateButtons();

  // A new, unacknowledged P1 elsewhere, or another alert's escalation step (the stream carries
  // other alerts in brief, an `alert.escalated` event its step beside): sounded and named in
  // the banner, with the way to it and to the queue, while this page stays.
  function elsewhere(doc) {
    if (doc.alert_id === alertId || !calls(cued, doc)) return;
    const e = escalationOf(doc);
    const what = e ? `${escalationText(e)}: ${t("type_" + doc.type)} (${doc.priority})`
      : `${t("new_p1_elsewhere")}: ${t("type_" + doc.type)}`;
    banner.replaceChildren(
      el("a", { href: `/console/alerts/${doc.alert_id}` }, what),
      " \u00b7 ", el("a", { href: "/console/" }, t("queue_title")));
    banner.hidden = false;
    soundAlarm(doc.alert_id);
  }

  // The open alerts, read whenever the stream may have lost events: a new P1 or an escalation
  // whose event was lost sounds all the same. The first read only notes what calls already
  // (seen on the queue).
  let primed = false;
  async function readOpen() {
    const docs = await api("GET", "/api/v1/alerts?state=open&limit=500&with_location=false");
    for (const doc of docs) {
      if (doc.alert_id === alertId) continue;
      if (primed) elsewhere(doc); else calls(cued, doc);
    }
    primed = true;
  }

  async function start() {
    drawZones(await reread()).catch(showError);
    await loadPositions();
  }

  start().catch(showError);
  // The stream carries no position: the page reads them where it shows them (positions).
  const isLive = follow(`?alert=${encodeURIComponent(alertId)}&with_location=false`, (event) => {
    if (!event.alert) return;
    if (event.alert.alert_id === alertId) reread().catch(showError);
    else elsewhere(withEscalation(event));
  }, () => { reread().catch(() => {}); readOpen().catch(() => {}); });
  // While the stream is not live (delayed: events may not arrive; offline) the alert and the
  // open alerts are read again every delayed_resync_s, as the queue does.
  setInterval(() => {
    if (isLive() || Date.now() - lastRead < delayedResyncS * 1000) return;
    reread().catch(() => {});
    readOpen().catch(() => {});
  }, 1000);
  // Positions are read only while someone can see them: not in a tab in the background (each
  // read is audited as a read), and at once when the tab comes back.
  function positionsDue() {
    return OPEN.has(stateEl.dataset.state) && reasonForm.hidden
      && document.visibilityState === "visible";
  }
  setInterval(() => {
    if (positionsDue()) loadPositions(givenReason).catch(() => {});
  }, refreshS * 1000);
  document.addEventListener("visibilitychange", () => {
    if (positionsDue()) loadPositions(givenReason).catch(() => {});
  });
})();
