// /ui/rollback: applies the plan the page previewed, through the REST API (POST /admin/config/rollback
// with the previewed point and head, or POST /admin/config/revert). The page itself is the dry run; this
// file only sends the change, shows the API's answer, and for a revert that later changes block, asks for
// the explicit confirmation a forced revert needs.
"use strict";

(() => {
  const { el, api, announce } = cfg;
  const panel = document.getElementById("apply");
  if (!panel) return;
  const d = panel.dataset;
  const reason = document.getElementById("reason");
  const error = document.getElementById("apply-error");
  const result = document.getElementById("apply-result");
  const applyBtn = document.getElementById("apply-btn");
  const forceBtn = document.getElementById("force-btn");
  const confirmBox = document.getElementById("confirm-force");
  const forcePanel = document.getElementById("force-panel");

  /** Shows a refusal (the API's message, as a sentence) beside the controls. */
  function fail(text) {
    error.textContent = text ? text.charAt(0).toUpperCase() + text.slice(1) : "";
  }

  /** The reason, or null after saying it is needed. */
  function reasonText() {
    const text = reason.value.trim();
    if (!text) {
      reason.setAttribute("aria-invalid", "true");
      reason.focus();
      fail("Give a reason: it is kept in the audit trail with the change.");
      return null;
    }
    reason.removeAttribute("aria-invalid");
    return text;
  }

  function busy(on) {
    for (const b of [applyBtn, forceBtn]) if (b) b.dataset.busy = on ? "1" : "";
    if (applyBtn) applyBtn.disabled = on;
    if (forceBtn) forceBtn.disabled = on || !(confirmBox && confirmBox.checked);
  }

  /** The applied report: what was done, with a link to its batch in the audit trail. */
  function done(report, what) {
    fail("");
    for (const b of [applyBtn, forceBtn]) if (b) b.disabled = true;
    if (confirmBox) confirmBox.disabled = true;
    reason.disabled = true;
    result.className = "result";
    if (report.status === "nothing_to_do" || !report.batch) {
      result.replaceChildren("Nothing to do: everything already held the values of the plan. The log is unchanged.");
      announce(`${what}: nothing to do`);
      result.focus();
      return;
    }
    const n = report.steps.filter((s) => !["locked", "invalid"].includes(s.action)).length;
    result.replaceChildren(
      `${what} applied: ${n} change(s) in batch `,
      el("a", { href: `/ui/audit?batch=${encodeURIComponent(report.batch)}` }, el("code", {}, report.batch.slice(-8))),
      `; the log's head is now seq ${report.head}. `,
      el("a", { href: `/ui/rollback?revert=${encodeURIComponent(report.batch)}` }, "Undo it"),
    );
    announce(`${what} applied`);
    result.focus();
  }

  /** What to do after a refusal, by status. */
  function next(reply) {
    switch (reply.status) {
      case 409:
        return " Someone changed the store since this preview: preview again to see the current plan.";
      case 422:
        return " Leave out what the message names and preview again.";
      case 429:
        return " Wait a moment, then apply again.";
      case 403:
        return " Your role may not do this; ask a platform_admin.";
      default:
        return "";
    }
  }

  // ---- Rollback to a point: the previewed point and head, so that exactly the reviewed plan applies.
  async function rollback() {
    const text = reasonText();
    if (text === null) return;
    const body = { to: d.to, reason: text, expected_head: Number(d.head) };
    if (d.keys) body.keys = JSON.parse(d.keys);
    if (d.namespace) body.namespace = d.namespace;
    busy(true);
    const reply = await api("POST", "/admin/config/rollback", body);
    busy(false);
    if (reply.ok) done(reply.body, "Rollback");
    else fail(`${reply.message}.${next(reply)}`);
  }

  // ---- Revert of a batch.
  /** Shows the later changes a forced dry run names, with the confirmation that a forced revert needs. */
  function showLater(later) {
    const tbody = document.querySelector("#later tbody");
    tbody.replaceChildren(
      ...later.map((c) =>
        el(
          "tr",
          {},
          el("th", { scope: "row", class: "key" }, el("code", {}, c.key)),
          el("td", { "data-label": "Seq" }, String(c.seq)),
          el("td", { "data-label": "Actor" }, c.actor),
          el("td", { "data-label": "Batch" }, el("a", { href: `/ui/audit?batch=${encodeURIComponent(c.batch)}` }, el("code", {}, c.batch.slice(-8)))),
        ),
      ),
    );
    document.getElementById("confirm-label").textContent = `I understand this overwrites ${later.length} later change(s)`;
    d.later = String(later.length);
    confirmBox.checked = false;
    forceBtn.disabled = true;
    forcePanel.hidden = false;
    const plain = document.getElementById("plain");
    if (plain) plain.hidden = true;
  }

  async function revert(force) {
    const text = reasonText();
    if (text === null) return;
    busy(true);
    if (force) {
      // A change that arrived after the preview would be overwritten unseen: check the count first.
      const dry = await api("POST", "/admin/config/revert", { batch: d.batch, force: true, dry_run: true });
      const later = dry.ok && dry.body.revert ? dry.body.revert.later_changes : null;
      if (later && later.length !== Number(d.later)) {
        busy(false);
        showLater(later);
        fail("More changes arrived since the preview: review the later changes again, then confirm.");
        return;
      }
    }
    const reply = await api("POST", "/admin/config/revert", { batch: d.batch, force, reason: text });
    busy(false);
    if (reply.ok) {
      done(reply.body, force ? "Forced revert" : "Revert");
      return;
    }
    if (reply.status === 409 && !force) {
      // Later changes block it: the API's message names them; the forced dry run lists them.
      const dry = await api("POST", "/admin/config/revert", { batch: d.batch, force: true, dry_run: true });
      if (dry.ok && dry.body.revert && dry.body.revert.later_changes.length) {
        showLater(dry.body.revert.later_changes);
        fail(`${reply.message}. Review the later changes below; to revert anyway, confirm and force it.`);
        confirmBox.focus();
        return;
      }
    }
    fail(`${reply.message}.${next(reply)}`);
  }

  if (d.kind === "rollback") applyBtn.addEventListener("click", rollback);
  if (d.kind === "revert") {
    if (applyBtn) applyBtn.addEventListener("click", () => revert(false));
    confirmBox.addEventListener("change", () => {
      forceBtn.disabled = !confirmBox.checked;
    });
    forceBtn.addEventListener("click", () => {
      if (confirmBox.checked) revert(true);
    });
  }
  reason.addEventListener("input", () => {
    if (reason.value.trim()) reason.removeAttribute("aria-invalid");
  });
})();
