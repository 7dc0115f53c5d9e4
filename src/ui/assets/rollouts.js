// /ui/rollouts: advance or roll back (abort) the rollout shown, through POST /admin/rollouts/{id}/advance
// and /rollback, then reload to show the new stage; a refusal shows the API's own message.
"use strict";

(() => {
  const { api, announce } = cfg;
  const detail = document.querySelector(".rollout-detail");
  if (!detail) return;
  const id = detail.dataset.id;
  const error = document.getElementById("ro-error");
  const reason = document.getElementById("ro-reason");

  async function act(what, button) {
    if (what === "rollback" && !window.confirm(`Roll back rollout ${id}? Every instance returns to the main values.`)) return;
    button.disabled = true;
    const body = {};
    if (reason && reason.value.trim()) body.reason = reason.value.trim();
    const res = await api("POST", `/admin/rollouts/${encodeURIComponent(id)}/${what}`, body);
    button.disabled = false;
    if (!res.ok) {
      error.textContent = res.message;
      return;
    }
    announce(what === "rollback" ? `Rollout ${id} rolled back.` : `Rollout ${id} advanced.`);
    window.location.reload();
  }

  const advance = document.getElementById("ro-advance");
  const rollback = document.getElementById("ro-rollback");
  if (advance) advance.addEventListener("click", () => act("advance", advance));
  if (rollback) rollback.addEventListener("click", () => act("rollback", rollback));
})();
