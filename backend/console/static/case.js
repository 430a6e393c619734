"use strict";
// The case page: a note added to the case log (POST /api/v1/cases/{id}/log/notes, the session's
// CSRF token), then the page read again, the note at the top of the log.
(() => {
  const { api, t } = window.sw;
  const form = document.getElementById("case-note-form");
  const errorEl = document.getElementById("case-note-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = document.getElementById("case-note").value.trim();
    if (!text) return;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await api("POST", `/api/v1/cases/${form.dataset.caseId}/log/notes`, { text });
      window.location.reload();
    } catch (e) {
      errorEl.hidden = false;
      errorEl.textContent = `${t("error")}: ${e.message}`;
      button.disabled = false;
    }
  });
})();
