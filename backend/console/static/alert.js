"use strict";
// The alert view: map with vector overlays (works with no tiles), actions through the API.
(function () {
  const { t, api } = window.sw;
  const view = document.getElementById("alert-view");
  const alertId = view.dataset.alertId;
  const tileUrl = view.dataset.tileUrl;
  const distanceEl = document.getElementById("distance");
  const reasonForm = document.getElementById("reason-form");
  const errorEl = document.getElementById("action-error");

  const map = L.map("map", { zoomControl: true, attributionControl: Boolean(tileUrl) });
  map.setView([52.1, 5.3], 7);
  if (tileUrl) L.tileLayer(tileUrl, { maxZoom: 19, attribution: view.dataset.tileAttribution }).addTo(map);
  const overlay = L.featureGroup().addTo(map);
  window.swMap = { map, overlay, drawn: 0 };

  const STYLE = {
    victim: { color: "#1565c0", fillColor: "#42a5f5" },
    offender: { color: "#b71c1c", fillColor: "#ef5350" },
  };

  function drawTrack(track, label) {
    if (!track) return null;
    const style = STYLE[track.role] || STYLE.victim;
    if (track.trail && track.trail.length > 1) {
      L.polyline(track.trail.map((p) => [p.lat, p.lon]), { color: style.color, weight: 3, opacity: 0.7 })
        .addTo(overlay);
    }
    const last = track.last;
    if (!last) return null;
    if (last.acc_m) {
      L.circle([last.lat, last.lon], { radius: last.acc_m, color: style.color, weight: 1,
                                       fillColor: style.fillColor, fillOpacity: 0.15 }).addTo(overlay);
    }
    L.circleMarker([last.lat, last.lon], { radius: 8, color: style.color, weight: 2,
                                           fillColor: style.fillColor, fillOpacity: 0.9 })
      .bindTooltip(`${label}${last.acc_m ? ` (${t("accuracy")} ${Math.round(last.acc_m)} m)` : ""}`,
                   { permanent: true, direction: "right" })
      .addTo(overlay);
    window.swMap.drawn += 1;
    return [last.lat, last.lon];
  }

  function drawZones(alertDoc) {
    const measures = (alertDoc.case && alertDoc.case.measures) || [];
    for (const m of measures) {
      if (m.geometry) {
        L.geoJSON(m.geometry, { style: { color: "#6a1b9a", weight: 2, fillOpacity: 0.08, dashArray: "6 4" } })
          .bindTooltip(m.kind || m.name || "zone").addTo(overlay);
      }
    }
  }

  async function loadPositions(reason) {
    overlay.clearLayers();
    window.swMap.drawn = 0;
    const query = reason ? `?reason=${encodeURIComponent(reason)}` : "";
    let doc;
    try {
      doc = await api("GET", `/api/v1/alerts/${alertId}/positions${query}`);
    } catch (e) {
      if (e.status === 403) { reasonForm.hidden = false; return; }
      throw e;
    }
    reasonForm.hidden = true;
    const alertDoc = await api("GET", `/api/v1/alerts/${alertId}${query}`);
    drawZones(alertDoc);
    const v = drawTrack(doc.victim, t("victim"));
    const o = drawTrack(doc.offender, t("offender"));
    if (v && o) {
      L.polyline([v, o], { color: "#333", weight: 1, dashArray: "4 4" }).addTo(overlay);
    }
    distanceEl.textContent = doc.distance_m != null
      ? `${t("distance")}: ${doc.distance_m >= 1000 ? (doc.distance_m / 1000).toFixed(2) + " km" : Math.round(doc.distance_m) + " m"}`
      : (v ? "" : t("no_position"));
    if (overlay.getLayers().length) map.fitBounds(overlay.getBounds().pad(0.3), { maxZoom: 17 });
  }

  reasonForm.addEventListener("submit", (event) => {
    event.preventDefault();
    loadPositions(new FormData(reasonForm).get("reason")).catch(showError);
  });

  function showError(e) { errorEl.hidden = false; errorEl.textContent = `${t("error")}: ${e.message}`; }

  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", async () => {
      const note = document.getElementById("note").value.trim();
      try {
        const doc = await api("POST", `/api/v1/alerts/${alertId}/${button.dataset.action}`,
                              note ? { note } : {});
        document.getElementById("alert-state").textContent = t("state_" + doc.state);
        document.getElementById("alert-state").dataset.state = doc.state;
        errorEl.hidden = true;
        setTimeout(() => window.location.reload(), 300);
      } catch (e) { showError(e); }
    });
  }

  loadPositions().catch(showError);
  if (window.location.hash === "#refresh") setInterval(() => loadPositions().catch(() => {}), 10000);
})();
