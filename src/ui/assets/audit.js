// /ui/audit: the filter form applies a choice of action, source, namespace or "rejected only" at once (the
// form still works without this script, with its button), and the newest page says when the log has moved
// on since it was loaded (the watch stream), with a link that shows the new entries. Rows are the server's.
"use strict";

(() => {
  const { el } = cfg;
  const form = document.querySelector("form.filters");
  if (form) {
    form.addEventListener("change", (e) => {
      const t = e.target;
      if (t.tagName === "SELECT" || t.type === "checkbox") form.requestSubmit();
    });
  }

  // Only the newest page follows the log: an older page is a fixed slice of the past.
  const count = document.getElementById("audit-count");
  if (!count || count.dataset.first !== "true") return;
  let seen = 0;
  let note = null;
  cfg.watch({ after: count.dataset.head, progress: "false" }, () => {
    seen += 1;
    if (!note) {
      note = el("p", { class: "notice", id: "audit-new" });
      count.after(note);
      cfg.announce("New changes in the audit trail");
    }
    note.replaceChildren(
      `${seen} new change(s) in the log since this page was loaded. `,
      el("a", { href: location.href }, "Show the newest entries"),
    );
  });
})();
