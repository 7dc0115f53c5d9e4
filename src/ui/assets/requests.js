// /ui/requests and /ui/requests/{id}: the propose form (rows of key and value added and removed here, an
// optional apply time sent as RFC 3339 UTC, a required reason) posts POST /admin/requests; the detail's
// Approve, Reject and Withdraw post /admin/requests/{id}/{verb} with an optional comment. Every answer is the
// API's own: a refusal's message is shown as it words it, and a success reloads the detail.
"use strict";

(() => {
  const { el, api, announce } = cfg;
  const FLASH = "cfgledger-request-flash";

  // A message carried over the reload that follows a review.
  const flash = sessionStorage.getItem(FLASH);
  if (flash) {
    sessionStorage.removeItem(FLASH);
    announce(flash);
  }

  // The list's status filter applies at once (the form still works with its button).
  const filters = document.querySelector("form.filters");
  if (filters) {
    filters.addEventListener("change", (e) => {
      if (e.target.tagName === "SELECT") filters.requestSubmit();
    });
  }

  /** A datetime-local value (the browser's zone) as RFC 3339 UTC, whole seconds. */
  function utc(local) {
    const d = new Date(local);
    if (Number.isNaN(d.getTime())) return null;
    return d.toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  const form = document.getElementById("propose-form");
  if (form) {
    const rows = document.getElementById("propose-rows");
    const error = document.getElementById("propose-error");
    const result = document.getElementById("propose-result");
    let next = rows.querySelectorAll(".change-row").length + 1;

    const renumber = () => {
      const all = rows.querySelectorAll(".change-row");
      all.forEach((row, i) => {
        const remove = row.querySelector(".remove-row");
        remove.setAttribute("aria-label", `Remove row ${i + 1}`);
        remove.disabled = all.length === 1;
      });
    };

    const addRow = () => {
      const n = next++;
      const row = el(
        "div",
        { class: "change-row", "data-row": n },
        el(
          "div",
          { class: "field" },
          el("label", { for: `propose-key-${n}` }, "Key"),
          el("input", {
            id: `propose-key-${n}`, class: "change-key", type: "text", list: "propose-keys", autocomplete: "off",
            spellcheck: "false", placeholder: "mcpgateway:LOG_LEVEL", "aria-describedby": "propose-hint",
          }),
        ),
        el(
          "div",
          { class: "field grow" },
          el("label", { for: `propose-value-${n}` }, "New value"),
          el("input", { id: `propose-value-${n}`, class: "change-value", type: "text", autocomplete: "off", spellcheck: "false" }),
        ),
        el("button", { type: "button", class: "small remove-row" }, "Remove"),
      );
      rows.append(row);
      renumber();
      row.querySelector(".change-key").focus();
    };

    document.getElementById("propose-add").addEventListener("click", addRow);
    rows.addEventListener("click", (e) => {
      const button = e.target.closest(".remove-row");
      if (!button || rows.querySelectorAll(".change-row").length === 1) return;
      const row = button.closest(".change-row");
      const focusNext = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      renumber();
      if (focusNext) focusNext.querySelector(".change-key").focus();
    });
    renumber();

    const fail = (message, field) => {
      error.textContent = message;
      result.hidden = true;
      if (field) {
        field.setAttribute("aria-invalid", "true");
        field.focus();
      }
    };

    form.addEventListener("input", (e) => e.target.removeAttribute("aria-invalid"));

    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      error.textContent = "";
      const changes = [];
      for (const row of rows.querySelectorAll(".change-row")) {
        const key = row.querySelector(".change-key");
        const value = row.querySelector(".change-value");
        const k = key.value.trim();
        if (!k && !value.value) continue;
        if (!k) return fail("A row has a value but no key: give its key (namespace:KEY), or remove the row.", key);
        changes.push({ op: "set", key: k, text: value.value });
      }
      if (changes.length === 0) {
        return fail("Nothing to propose: give at least one key and its new value.", rows.querySelector(".change-key"));
      }
      const reason = document.getElementById("propose-reason");
      if (!reason.value.trim()) return fail("A change request needs a reason: say why, for the reviewers and the audit trail.", reason);
      const body = { changes, reason: reason.value.trim() };
      const at = document.getElementById("propose-apply-at");
      if (at.value) {
        const when = utc(at.value);
        if (!when) return fail("The apply time is not a date and time.", at);
        body.apply_at = when;
      }
      const submit = document.getElementById("propose-submit");
      submit.disabled = true;
      const reply = await api("POST", "/admin/requests", body);
      submit.disabled = false;
      if (!reply.ok) {
        fail(`Not proposed: ${reply.message}`);
        announce(`Not proposed: ${reply.message}`);
        return;
      }
      const r = reply.body;
      const needs = r.required_approvals === 1 ? "1 approval" : `${r.required_approvals} approvals`;
      const what = r.status === "applied" ? "applied at once (the policy asks no approval)" : `${r.status}; it needs ${needs}`;
      result.replaceChildren(
        "Proposed ",
        el("a", { href: `/ui/requests/${r.id}`, id: "propose-link" }, `change request #${r.id}`),
        `: ${what}.`,
      );
      result.hidden = false;
      showInList(r);
      announce(`Proposed change request #${r.id}: ${r.status}`);
      form.reset();
      for (const row of [...rows.querySelectorAll(".change-row")].slice(1)) row.remove();
      renumber();
    });
  }

  /** Puts a request just proposed at the top of the list, as the server renders its rows (a status filter
   *  it does not match leaves the list alone). */
  function showInList(r) {
    const table = document.getElementById("requests");
    const status = document.getElementById("r-status");
    if (!table || (status && status.value && status.value !== r.status)) return;
    const badge = { applied: "badge good", open: "badge status-waiting", scheduled: "badge status-waiting" }[r.status] || "badge";
    const changes = r.changes.length === 1 ? "1 change" : `${r.changes.length} changes`;
    const row = el(
      "tr",
      { "data-id": r.id, "data-status": r.status, class: "flash" },
      el("th", { scope: "row", class: "id" }, el("a", { href: `/ui/requests/${r.id}` }, `#${r.id}`), el("span", { class: "seq" }, changes)),
      el("td", { class: "status" }, el("span", { class: badge, "data-status": r.status }, r.status)),
      el("td", { class: "author", "data-label": "Author" }, r.author),
      el("td", { class: "reason", "data-label": "Reason" }, r.reason),
      el("td", { class: "approvals", "data-label": "Approvals" }, `${r.approvals.length} of ${r.required_approvals}`),
      el("td", { class: "apply-at", "data-label": "Apply at" },
        r.apply_at ? cfg.time(r.apply_at) : el("span", { class: "muted" }, r.status === "open" ? "when approved" : "—")),
      el("td", { class: "proposed", "data-label": "Proposed" }, cfg.time(r.proposed_at)),
    );
    table.tBodies[0].prepend(row);
    const count = document.getElementById("requests-count");
    const n = table.tBodies[0].rows.length;
    if (count) count.textContent = `${n} ${n === 1 ? "request" : "requests"}, newest first.`;
  }

  const review = document.getElementById("review-form");
  if (review) {
    const id = review.dataset.id;
    const error = document.getElementById("review-error");
    const done = { approve: "Approved", reject: "Rejected", withdraw: "Withdrew" };
    review.addEventListener("click", async (e) => {
      const button = e.target.closest("button[data-verb]");
      if (!button) return;
      const verb = button.dataset.verb;
      const comment = document.getElementById("review-comment").value.trim();
      error.textContent = "";
      for (const b of review.querySelectorAll("button")) b.disabled = true;
      const reply = await api("POST", `/admin/requests/${id}/${verb}`, comment ? { comment } : {});
      for (const b of review.querySelectorAll("button")) b.disabled = false;
      if (!reply.ok) {
        error.textContent = `Refused: ${reply.message}`;
        announce(`Refused: ${reply.message}`);
        button.focus();
        return;
      }
      sessionStorage.setItem(FLASH, `${done[verb]} change request #${id}: it is ${reply.body.status} now.`);
      location.reload();
    });
  }
})();
