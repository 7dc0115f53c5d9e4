// /ui/transfer: the export links follow the filter form; an import file is read in the browser, previewed
// through the API's dry run, and applied exactly as previewed, then its status is read back. The source
// secret is sent only in the request body: never shown, logged or kept after the apply.
"use strict";

(() => {
  const { el, api, announce, valueText } = cfg;
  /** The API's message (lowercase, no period) as the start of a sentence. */
  const sentence = (m) => (m ? `${m[0].toUpperCase()}${m.slice(1)}` : "");

  // ---- Export: the links as the form stands (the same query the server builds without this script).
  const exportForm = document.getElementById("export-form");
  if (exportForm) {
    const kinds = () => Array.from(exportForm.querySelectorAll("input[name=types]"));
    const update = () => {
      const data = new FormData(exportForm);
      const reg = new URLSearchParams();
      if (data.get("format") === "mcpgateway") reg.set("format", "mcpgateway");
      const checked = kinds().filter((k) => k.checked).map((k) => k.value);
      if (checked.length > 0 && checked.length < kinds().length) reg.set("types", checked.join(","));
      const tags = (data.get("tags") || "").toString().trim();
      if (tags) reg.set("tags", tags);
      if (data.get("inactive")) reg.set("include_inactive", "true");
      if (!data.get("deps")) reg.set("include_dependencies", "false");
      const q = reg.toString().replace(/%2C/g, ",");
      const regHref = q ? `/export?${q}` : "/export";
      const ns = (data.get("ns") || "").toString();
      const setHref = ns ? `/admin/config/export?namespace=${encodeURIComponent(ns)}` : "/admin/config/export";
      const link = document.getElementById("export-registry");
      link.href = regHref;
      // The file's name says its layout (the seq stays the one the page was rendered at).
      link.download = link.download.replace(/^cfgledger-registry(-mcpgateway)?-/, `cfgledger-registry${reg.get("format") ? "-mcpgateway" : ""}-`);
      document.getElementById("export-registry-href").textContent = regHref;
      document.getElementById("export-settings").href = setHref;
      document.getElementById("export-settings-href").textContent = setHref;
      const none = checked.length === 0;
      document.getElementById("export-registry-href").classList.toggle("warn", none);
      if (none) document.getElementById("export-registry-href").textContent = `${regHref} (no kind checked: every kind is exported)`;
    };
    exportForm.addEventListener("input", update);
    exportForm.addEventListener("change", update);
    update();
  }

  // ---- Recent imports (auditors), read after the page is shown.
  recentImports();

  // ---- Import.
  const form = document.getElementById("import-form");
  if (!form) return;
  const file = document.getElementById("i-file");
  const info = document.getElementById("i-file-info");
  const error = document.getElementById("import-error");
  const result = document.getElementById("import-result");
  const preview = document.getElementById("i-preview");
  const apply = document.getElementById("i-apply");
  const secret = document.getElementById("i-secret");
  let doc = null;
  let previewed = null;

  const which = () => form.querySelector("input[name=which]:checked").value;
  const showFor = () => {
    for (const box of form.querySelectorAll("[data-for]")) box.hidden = box.dataset.for !== which();
  };
  form.addEventListener("change", (e) => {
    if (e.target.name === "which") showFor();
  });
  showFor();

  // Any change after a preview means the preview no longer describes what Apply would send.
  form.addEventListener("input", (e) => {
    if (e.target === file) return;
    stale();
  });
  form.addEventListener("change", (e) => {
    if (e.target !== file) stale();
  });
  function stale() {
    if (!previewed) return;
    previewed = null;
    apply.disabled = true;
    error.textContent = "The options changed since the preview: preview again before applying.";
  }

  file.addEventListener("change", async () => {
    doc = null;
    previewed = null;
    apply.disabled = true;
    error.textContent = "";
    result.replaceChildren();
    const f = file.files[0];
    if (!f) return;
    let text;
    try {
      text = await f.text();
    } catch (e) {
      error.textContent = `Cannot read ${f.name}: ${e.message}. Choose the file again.`;
      return;
    }
    try {
      doc = JSON.parse(text);
    } catch (e) {
      error.textContent = `${f.name} is not JSON (${e.message}). Choose a file written by an export.`;
      return;
    }
    if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
      doc = null;
      error.textContent = `${f.name} is not an export document (a JSON object). Choose a file written by an export.`;
      return;
    }
    // Choose the import from the file's own format; the operator can still change it.
    const settingsFile = doc.format === "cfgledger-settings";
    form.querySelector(`input[value=${settingsFile ? "settings" : "registry"}]`).checked = true;
    showFor();
    const parts = [`${f.name} (${Math.max(1, Math.round(f.size / 1024))} KB)`];
    if (doc.format) parts.push(`format ${doc.format}`);
    else if (doc.source_gateway || doc.encryption_method) parts.push("MCP Gateway's layout");
    if (doc.exported_at) parts.push(`exported ${doc.exported_at}${doc.exported_by ? ` by ${doc.exported_by}` : ""}`);
    if (doc.source && doc.source.seq !== undefined) parts.push(`at seq ${doc.source.seq}`);
    if (doc.entities && typeof doc.entities === "object") {
      const counts = Object.entries(doc.entities).filter(([, v]) => Array.isArray(v) && v.length).map(([k, v]) => `${v.length} ${k}`);
      if (counts.length) parts.push(counts.join(", "));
    }
    if (doc.settings && typeof doc.settings === "object") parts.push(`${Object.keys(doc.settings).length} settings`);
    info.textContent = `${parts.join(" · ")}.`;
    picker();
    announce("File read. Preview it next.");
  });

  // ---- Which of the file's entities to import (all unless some are unticked).
  const ID_FIELD = { resources: "uri", roots: "uri" };
  const pick = document.getElementById("i-pick");
  function picker() {
    pick.replaceChildren();
    const groups = [];
    for (const [kind, list] of Object.entries((doc && doc.entities) || {})) {
      if (!Array.isArray(list)) continue;
      const names = list.map((e) => e && e[ID_FIELD[kind] || "name"]).filter((n) => typeof n === "string");
      if (names.length) groups.push([kind, names]);
    }
    if (!groups.length) return;
    const total = groups.reduce((n, [, names]) => n + names.length, 0);
    const count = el("span", { class: "muted" }, `all ${total}`);
    const boxes = [];
    const update = () => {
      const on = boxes.filter((b) => b.checked).length;
      count.textContent = on === total ? `all ${total}` : `${on} of ${total}`;
    };
    const all = (v) => () => {
      for (const b of boxes) b.checked = v;
      update();
      stale();
    };
    let i = 0;
    const lists = groups.map(([kind, names]) =>
      el("div", { class: "pick-kind" },
        el("h3", {}, kind),
        el("ul", {}, names.map((name) => {
          i += 1;
          const box = el("input", { type: "checkbox", id: `pick-${i}`, checked: true, "data-kind": kind, "data-name": name, onchange: update });
          boxes.push(box);
          return el("li", { class: "check" }, box, el("label", { for: `pick-${i}` }, name));
        }))));
    pick.append(el("fieldset", {},
      el("legend", {}, "4. Entities to import (", count, ")"),
      el("div", { class: "pick-tools" },
        el("button", { type: "button", class: "small", onclick: all(true) }, "All"),
        el("button", { type: "button", class: "small", onclick: all(false) }, "None"),
        el("span", { class: "hint" }, "Untick what to leave out; what a kept server links must be kept or already exist here.")),
      el("div", { class: "pick-lists" }, lists)));
  }

  /** The entities ticked, when not all are: `{kind: [names]}`; null when all are. */
  function selection() {
    const boxes = Array.from(pick.querySelectorAll("input[type=checkbox]"));
    if (boxes.every((b) => b.checked)) return null;
    const out = {};
    for (const b of boxes.filter((x) => x.checked)) (out[b.dataset.kind] = out[b.dataset.kind] || []).push(b.dataset.name);
    return out;
  }

  /** The request an import sends: the same for its preview and its apply, but the dry run flag. */
  function request(dryRun, expectedHead) {
    const reason = document.getElementById("i-reason").value.trim();
    if (which() === "settings") {
      const q = new URLSearchParams({ namespace: document.getElementById("i-ns").value });
      if (dryRun) q.set("dry_run", "true");
      if (reason) q.set("reason", reason);
      if (!dryRun && expectedHead !== undefined) q.set("expected_head", String(expectedHead));
      return { url: `/admin/config/import?${q}`, body: doc };
    }
    const body = {
      import_data: doc,
      conflict_strategy: document.getElementById("i-strategy").value,
      dry_run: dryRun,
      with_settings: document.getElementById("i-with-settings").checked,
      allow_edited: document.getElementById("i-allow-edited").checked,
    };
    const chosen = selection();
    if (chosen) body.selected_entities = chosen;
    if (secret.value) body.source_secret = secret.value;
    if (reason) body.reason = reason;
    return { url: "/import", body };
  }

  function advice(res) {
    res = Object.assign({}, res, { message: sentence(res.message) });
    switch (res.status) {
      case 0:
        return res.message;
      case 400:
        return `${res.message}. Check the options and that the file is an export document, then preview again.`;
      case 403:
        return `${res.message}. Only a platform_admin can import.`;
      case 409:
        return `${res.message}. Nothing was applied. Preview again to see the store as it is now${which() === "registry" ? ", or choose another conflict strategy" : ""}.`;
      case 413:
        return `${res.message}. The file is larger than REQUEST_SIZE_LIMIT allows: export fewer kinds or tags, or raise the limit.`;
      case 422:
        return `${res.message}. Nothing was applied. Fix what the plan below marks${which() === "registry" ? " (or give the source store's secret if credentials do not open)" : ""}, then preview again.`;
      case 429:
        return `${res.message}. Wait a moment, then apply again.`;
      default:
        return `${res.message}. Try again; if it persists, see the server's log.`;
    }
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    if (!doc) {
      error.textContent = "Choose an export file first (step 1).";
      file.focus();
      return;
    }
    const { url, body } = request(true);
    preview.disabled = true;
    const res = await api("POST", url, body);
    preview.disabled = false;
    result.replaceChildren();
    if (!res.ok) {
      error.textContent = advice(res);
      const details = res.body && res.body.error && res.body.error.details;
      if (details) showPlan(details.plan || details, "The plan the server refused", true);
      return;
    }
    previewed = { which: which(), head: res.body.head };
    apply.disabled = false;
    showPlan(res.body, "Preview (nothing applied yet)");
    // The plan is what to read next: take the reader there (Apply stays one Tab away after it).
    result.querySelector(".plan-title").focus();
    announce("Preview ready. Review the plan, then apply.");
  });

  apply.addEventListener("click", async () => {
    if (!previewed || !doc) return;
    error.textContent = "";
    const { url, body } = request(false, previewed.head);
    apply.disabled = true;
    const res = await api("POST", url, body);
    if (!res.ok) {
      error.textContent = advice(res);
      const details = res.body && res.body.error && res.body.error.details;
      if (details) showPlan(details.plan || details, "The plan the server refused", true);
      previewed = null;
      return;
    }
    previewed = null;
    secret.value = "";
    showPlan(res.body, "Applied");
    const id = res.body.import_id || res.body.batch;
    if (id) {
      await showStatus(id);
      await recentImports();
      const status = document.getElementById("import-status");
      if (status) status.focus();
    }
    else result.prepend(el("p", { class: "notice", role: "status" }, "Nothing to do: the store already holds everything in this file. Nothing was appended."));
    announce("Import applied.");
  });

  // ---- Showing a plan or a report.
  const ACTION_CLASS = { create: "good", update: "pending", conflict: "bad", invalid: "bad", locked: "locked", rename: "pending" };
  const actionBadge = (a) => el("span", { class: `badge action action-${a} ${ACTION_CLASS[a] || ""}` }, a);

  const ORDER = ["create", "update", "unchanged", "skip", "rename", "locked", "conflict", "invalid"];
  function counts(obj) {
    const entries = Object.entries(obj || {}).sort(([a], [b]) => ORDER.indexOf(a) - ORDER.indexOf(b));
    return el("ul", { class: "counts" }, entries.map(([k, v]) => el("li", { class: v && (k === "conflict" || k === "invalid") ? "error" : "" }, el("strong", {}, String(v)), ` ${k}`)));
  }

  function settingsTable(plan, caption) {
    const rows = (plan.plan || []).map((p) =>
      el("tr", { class: `plan-${p.action}` },
        el("th", { scope: "row" }, el("code", {}, p.key)),
        el("td", {}, actionBadge(p.action)),
        el("td", {}, p.action === "create" ? el("span", { class: "muted" }, "not set") : el("code", { class: p.action === "update" ? "old" : "" }, valueText(p.current))),
        el("td", {}, el("code", { class: p.action === "update" || p.action === "create" ? "new" : "" }, valueText(p.value))),
        el("td", {}, p.message || "")));
    return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
      el("table", { class: "import-plan diff" },
        el("caption", { class: "visually-hidden" }, caption),
        el("thead", {}, el("tr", {}, ["Key", "Action", "Current", "From the file", "Note"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows)));
  }

  function showPlan(report, title, refused) {
    result.replaceChildren();
    if (!report || typeof report !== "object") return;
    const box = el("section", { class: "plan-box", "aria-label": title });
    box.append(el("h2", { tabindex: "-1", class: "plan-title" }, title));
    if (Array.isArray(report.entities)) {
      // A registry import's report.
      const facts = [];
      if (report.layout) facts.push(`read as ${report.layout}'s layout`);
      if (report.rekeyed) facts.push(`${report.rekeyed} credential(s) re-sealed under this store's key`);
      if (report.head !== undefined) facts.push(report.dry_run || refused ? `planned at seq ${report.head}` : `the log's head is now seq ${report.head}`);
      if (facts.length) {
        const text = facts.join("; ");
        box.append(el("p", { class: "hint" }, `${text[0].toUpperCase()}${text.slice(1)}.`));
      }
      box.append(el("h3", {}, "Entities"), counts(report.counts));
      if (report.dry_run && report.counts && report.counts.conflict && document.getElementById("i-strategy").value === "fail") {
        box.append(el("p", { class: "notice" }, `With the “fail” strategy, applying this file will be refused: ${report.counts.conflict} entit${report.counts.conflict === 1 ? "y exists" : "ies exist"} with other content. Choose update, skip or rename, then preview again.`));
      }
      if (report.entities.length) {
        const rows = report.entities.map((p) =>
          el("tr", { class: `plan-${p.action}` },
            el("td", {}, p.kind),
            el("th", { scope: "row" }, el("code", {}, p.name), p.renamed_to ? el("span", { class: "by" }, `→ ${p.renamed_to}`) : null),
            el("td", {}, actionBadge(p.action)),
            el("td", {}, (p.changed || []).length ? el("span", {}, "fields: ", (p.changed || []).map((c, i) => [i ? ", " : "", el("code", {}, c)])) : ""),
            el("td", {}, (p.notes || []).length ? el("ul", { class: "notes" }, p.notes.map((n) => el("li", {}, n))) : "")));
        box.append(el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "What the import does to each entity" },
          el("table", { class: "import-plan" },
            el("caption", { class: "visually-hidden" }, "What the import does to each entity"),
            el("thead", {}, el("tr", {}, ["Kind", "Name", "Action", "Changes", "Notes"].map((h) => el("th", { scope: "col" }, h)))),
            el("tbody", {}, rows))));
      } else box.append(el("p", { class: "muted" }, "The file holds no entity."));
      if (report.settings) {
        box.append(el("h3", {}, "Settings"), counts(report.settings.summary));
        if ((report.settings.plan || []).length) box.append(settingsTable(report.settings, "What the import does to each setting"));
      }
      if ((report.notes || []).length) box.append(el("h3", {}, "Notes"), el("ul", { class: "notes" }, report.notes.map((n) => el("li", {}, n))));
      if (report.result) box.append(resultBlock(report.result));
    } else if (Array.isArray(report.plan)) {
      // A settings import's report.
      box.append(el("p", { class: "hint" }, report.dry_run === false && !refused ? `The log's head is now seq ${report.head}.` : `Planned at seq ${report.head}; Apply refuses if the store changes before it.`));
      box.append(counts(report.summary));
      if ((report.conflicts || []).length) {
        box.append(el("p", { class: "notice" }, `${report.conflicts.length} key(s) hold another value in the store and will be replaced: `, report.conflicts.join(", ")));
      }
      box.append(settingsTable(report, "What the import does to each key"));
      if (report.result) box.append(resultBlock(report.result));
    }
    result.append(box);
    cfg.localTimes(result);
  }

  function resultBlock(r) {
    const list = (label, items) => items && items.length ? el("li", {}, `${label}: `, items.join(", ")) : null;
    return el("div", { class: "result" },
      el("h3", {}, "What was written"),
      el("ul", {},
        list("Created", r.created),
        list("Updated", r.updated),
        el("li", {}, `Unchanged: ${r.unchanged}`),
        list("Locked (skipped)", r.locked)));
  }

  /** The recent imports' table, read again after an apply (the same columns the page renders). */
  async function recentImports() {
    const heading = document.getElementById("recent-h");
    if (!heading) return;
    const res = await api("GET", "/import/status");
    if (!res.ok) {
      heading.parentElement.replaceChildren(heading, el("p", { class: "error", role: "alert" }, `Cannot read the recent imports: ${sentence(res.message)}. Reload the page in a moment.`));
      return;
    }
    if (!res.body.imports.length) {
      heading.parentElement.replaceChildren(heading, el("p", { class: "muted" }, "No import yet."));
      return;
    }
    const rows = res.body.imports.slice(0, 10).map((s) =>
      el("tr", {},
        el("th", { scope: "row" }, el("code", { title: s.import_id }, s.import_id.slice(0, 12)), el("span", { class: "by" }, `seq ${s.seq}`)),
        el("td", {}, cfg.time(s.time)),
        el("td", {}, s.actor, el("span", { class: "by" }, `via ${s.source}`), s.reason ? el("span", { class: "by" }, `“${s.reason}”`) : null),
        el("td", {}, el("span", { class: s.status === "completed" ? "badge good" : "badge" }, s.status === "completed" ? "completed" : "nothing to do")),
        el("td", {}, String(s.created.length)),
        el("td", {}, String(s.updated.length)),
        el("td", {}, String(s.unchanged)),
        el("td", {}, String(s.locked.length))));
    const table = el("table", { class: "imports" },
      el("caption", { class: "visually-hidden" }, "The ten most recent imports"),
      el("thead", {}, el("tr", {}, ["Import", "When", "By", "Status", "Created", "Updated", "Unchanged", "Locked"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows));
    heading.parentElement.replaceChildren(heading, el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Recent imports" }, table));
  }

  async function showStatus(id) {
    const res = await api("GET", `/import/status/${encodeURIComponent(id)}`);
    if (!res.ok) {
      result.prepend(el("p", { class: "notice", role: "status" }, `Applied as import ${id}; its status cannot be read: ${res.message}. Find it under “Recent imports” after a reload.`));
      return;
    }
    const s = res.body;
    const done = s.status === "completed";
    result.prepend(el("div", { class: `status-box ${done ? "ok-notice" : "notice"}`, role: "status", id: "import-status", tabindex: "-1" },
      el("strong", {}, done ? "Import completed" : "Nothing to do"),
      ` · import `, el("code", { title: s.import_id }, s.import_id.slice(0, 12)), ` at seq ${s.seq}, `, cfg.time(s.time), ` by ${s.actor} via ${s.source}`,
      ` · ${s.created.length} created, ${s.updated.length} updated, ${s.unchanged} unchanged, ${s.locked.length} locked.`,
      " ", el("a", { href: "/ui/audit" }, "See it in the audit")));
  }
})();
