// /ui/audit: the filter form applies a choice of action, source, namespace or "rejected only" at once (the
// form still works without this script, with its button). Everything else is the server's page.
"use strict";

(() => {
  const form = document.querySelector("form.filters");
  if (!form) return;
  form.addEventListener("change", (e) => {
    const t = e.target;
    if (t.tagName === "SELECT" || t.type === "checkbox") {
      // A new filter starts at the newest page.
      for (const c of form.querySelectorAll("input[name=cursor]")) c.remove();
      form.requestSubmit();
    }
  });
})();
