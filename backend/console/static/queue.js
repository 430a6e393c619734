"use strict";
// The live alert queue: loaded from the API, kept current over the WebSocket, sorted by priority
// then age (oldest first). An unacknowledged P1 sounds the alarm and shows a running timer; an
// alert that escalates is marked and sounds again (each step once) until it is acknowledged.
(function () {
  const { t, api, el, age, localTime, follow, soundAlarm, silence, escalationOf, escalationText,
          laterEscalation, withEscalation, calls } = window.sw;
  const OPEN = new Set(["new", "acknowledged", "dispatched"]);
  const alerts = new Map();
  const body = document.querySelector("#alert-queue tbody");
  const empty = document.getElementById("queue-empty");
  const banner = document.getElementById("p1-banner");
  const notices = document.getElementById("case-notices");
  const noticeList = document.getElementById("case-notice-list");
  const NOTICES_KEPT = 20;
  const cued = new Map();  // per alert, what the alarm last sounded for (sw.calls)
  // Per alert seen closed, the sequence it closed at: a read answer begun before it closed
  // (an older sequence) does not bring it back. A closed alert never opens again.
  const closed = new Map();

  // Pure: whether a document is older than what the page knows of its alert.
  function outdated(doc, known, closedAt) {
    const seq = doc.sequence;
    if (closedAt !== undefined) return seq === undefined || seq <= closedAt;
    return Boolean(known) && seq !== undefined && known.sequence > seq;
  }

  function upsert(doc) {
    if (!doc || !doc.alert_id) return;
    const known = alerts.get(doc.alert_id);
    if (outdated(doc, known, closed.get(doc.alert_id))) return;
    const merged = Object.assign({}, known || {}, doc);
    merged.escalation = laterEscalation(known && known.escalation, doc.escalation);
    if (merged.state && !OPEN.has(merged.state)) {
      alerts.delete(doc.alert_id);
      closed.set(doc.alert_id, doc.sequence === undefined ? Infinity : doc.sequence);
    } else alerts.set(doc.alert_id, merged);
    if (calls(cued, merged)) soundAlarm(doc.alert_id);
    else if (!escalationOf(merged) && !(merged.priority === "P1" && merged.state === "new")) {
      silence(doc.alert_id);  // acknowledged or closed: its cue stops
    }
  }

  // "escalated: step 2, desk supervisor" beside the state, while the escalation stands.
  function stateCell(doc) {
    const e = escalationOf(doc);
    return el("td", {}, t("state_" + doc.state), e ? " " : "", e
      ? el("span", { class: "escalation-mark", "data-step": String(e.step),
                     "data-action": e.action, "data-target": e.target }, escalationText(e))
      : "");
  }

  const RANK = { P1: 1, P2: 2, P3: 3, P4: 4 };
  function sorted() {
    return [...alerts.values()].sort((a, b) =>
      (RANK[a.priority] || 9) - (RANK[b.priority] || 9) || Date.parse(a.raised_at) - Date.parse(b.raised_at));
  }

  function policeCell(doc) {
    const d = doc.police_delivery;
    if (d === "unreachable" || d === "rejected") {
      return el("td", { class: "police-alarm", "data-police": d }, t("police_not_reached"));
    }
    return el("td", { "data-police": d || "" },
              d ? t("police_state_" + d) : (doc.police_unit || ""));
  }

  // The cells of an alert's row but its link (which stays as it is: a click or the keyboard
  // focus on it survives every update).
  function cells(doc, urgent) {
    const region = doc.region ? `${doc.region.vr_code} ${doc.region.vr_name || ""}` : "-";
    return [
      el("td", {}, el("span", { class: `prio prio-${doc.priority}` }, doc.priority)),
      el("td", {}, t("type_" + doc.type)),
      stateCell(doc),
      el("td", { class: urgent ? "timer running" : "timer", "data-since": doc.raised_at },
         age(doc.raised_at)),
      el("td", {}, region),
      el("td", {}, doc.case ? doc.case.reference : "-"),
      policeCell(doc),
    ];
  }

  const rows = new Map();  // alert id -> its row, kept from one update to the next
  function rowOf(doc) {
    let row = rows.get(doc.alert_id);
    if (!row) {
      row = el("tr", { "data-alert-id": doc.alert_id },
        el("td", {}, el("a", { href: `/console/alerts/${doc.alert_id}`, class: "open" },
                        t("open"))));
      rows.set(doc.alert_id, row);
    }
    return row;
  }
  // Each row updated in place, a cell replaced only when it changed; rows moved only where
  // the order changed, and the focus put back should a move have taken it.
  function updateRow(row, doc, urgent) {
    const marks = (urgent ? " urgent" : "") + (escalationOf(doc) ? " escalated" : "");
    const className = `prio-${doc.priority} state-${doc.state}${marks}`;
    if (row.className !== className) row.className = className;
    const fresh = cells(doc, urgent);
    const link = row.lastElementChild;
    fresh.forEach((cell, i) => {
      const old = row.children[i];
      if (old === link) row.insertBefore(cell, link);
      else if (!old.isEqualNode(cell)) old.replaceWith(cell);
    });
  }

  function render() {
    const focused = body.contains(document.activeElement) ? document.activeElement : null;
    let unackP1 = 0;
    const order = sorted();
    const wanted = new Set(order.map((doc) => doc.alert_id));
    for (const [id, row] of rows) if (!wanted.has(id)) { row.remove(); rows.delete(id); }
    order.forEach((doc, i) => {
      const urgent = doc.priority === "P1" && doc.state === "new";
      if (urgent) unackP1 += 1;
      const row = rowOf(doc);
      updateRow(row, doc, urgent);
      if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
    });
    if (focused && focused.isConnected && document.activeElement !== focused) {
      focused.focus({ preventScroll: true });
    }
    empty.hidden = alerts.size > 0;
    banner.hidden = unackP1 === 0;
    banner.textContent = unackP1 ? `${t("unacknowledged_p1")}: ${unackP1}` : "";
  }

  // A case, as a link where this console can open case pages (the police cannot).
  function caseLink(caseId, reference) {
    return notices.dataset.caseLinks === "1"
      ? el("a", { href: `/console/cases/${caseId}` }, reference)
      : el("span", { class: "case-ref" }, reference);
  }

  // An event about a case (custody release, pursuit mode): a line with the time it came, a
  // link to the case and what happened; the newest first. A custody event replaces the line
  // the page came with for that case (a case still tightened by a release).
  function notice(event) {
    if (event.event.startsWith("case.custody_")) {
      for (const standing of noticeList.querySelectorAll("li[data-standing]")) {
        if (standing.dataset.caseId === event.case_id) standing.remove();
      }
    }
    const name = event.event.slice("case.".length) + (event.mode ? "_" + event.mode : "");
    let text = t("notice_" + name);
    if (event.until) text += ` ${t("notice_until")} ${localTime(event.until)}`;
    const link = event.case_id ? caseLink(event.case_id, event.reference || t("col_case")) : "";
    noticeList.prepend(el("li", { "data-event": event.event, "data-case-id": event.case_id || "" },
      el("time", {}, localTime(Date.now(), false)), link, " ", text));
    while (noticeList.children.length > NOTICES_KEPT) noticeList.lastElementChild.remove();
    notices.hidden = false;
  }

  // The standing notices (cases a release still tightens), read again whenever the stream may
  // have lost events: a release whose event was lost shows all the same. A case with a live
  // custody notice keeps that one.
  async function loadStanding() {
    const standing = await api("GET", "/console/notices");
    for (const item of noticeList.querySelectorAll("li[data-standing]")) item.remove();
    const live = new Set([...noticeList.querySelectorAll("li[data-event^='case.custody_']")]
      .map((item) => item.dataset.caseId));
    for (const c of standing) {
      if (live.has(c.case_id)) continue;
      const item = el("li", { "data-event": "case.custody_released", "data-case-id": c.case_id,
                              "data-standing": "1" },
        el("time", {}, localTime(c.released)), caseLink(c.case_id, c.reference),
        ` ${t("notice_custody_released")} ${t("notice_until")} ${localTime(c.until)}`);
      noticeList.append(item);
    }
    notices.hidden = noticeList.children.length === 0;
  }

  function tick() {
    for (const cell of document.querySelectorAll("td.timer")) cell.textContent = age(cell.dataset.since);
  }

  // Test and monitoring hook: reads of the open alerts done and under way.
  window.swQueue = { reads: 0, pending: 0 };
  let lastRead = Date.now();
  async function load() {
    lastRead = Date.now();
    window.swQueue.pending += 1;
    try {
      const shown = new Set(alerts.keys());  // what this read can vouch for, from its start
      // The queue shows no position: none is read (nor audited) for it.
      const docs = await api("GET", "/api/v1/alerts?state=open&limit=500&with_location=false");
      const open = new Set(docs.map((doc) => doc.alert_id));
      for (const id of shown) if (!open.has(id)) alerts.delete(id);  // closed, its event lost
      for (const doc of docs) upsert(doc);
      render();
      window.swQueue.reads += 1;
    } finally {
      window.swQueue.pending -= 1;
    }
  }

  render();
  // The queue shows no position: its stream carries none (nor is any audited for it).
  const isLive = follow("?with_location=false", (event) => {
    if (event.alert) { upsert(withEscalation(event)); render(); }
    else if (typeof event.event === "string" && event.event.startsWith("case.")) notice(event);
  }, () => { load().catch(() => {}); loadStanding().catch(() => {}); });
  setInterval(tick, 1000);
  // The stream carries every event while the server's fan-out works; should it lose some (Redis
  // away), the open alerts are read again now and then, so a new alert shows (and sounds)
  // within this long all the same; more often while the link is not live.
  const table = document.getElementById("alert-queue");
  const resyncS = Number(table.dataset.resyncS) || 15;
  const delayedResyncS = Number(table.dataset.delayedResyncS) || 5;
  setInterval(() => {
    const everyS = isLive() ? resyncS : delayedResyncS;
    if (Date.now() - lastRead >= everyS * 1000) load().catch(() => {});
  }, 1000);
})();
