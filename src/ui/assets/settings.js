// /ui/settings: instant filtering, inline editing (always with If-Match), the JSON editor, and live
// updates from the watch stream. Every rule stays on the server: this file shows its answers.
"use strict";

(() => {
  const { el, api, announce, valueText } = cfg;
  const table = document.getElementById("settings");
  if (!table) return;
  const form = document.querySelector("form.filters");
  const count = document.getElementById("count");
  const rows = () => Array.from(table.tBodies[0].rows).filter((r) => r.dataset.key);
  const rowOf = (key) => document.getElementById(`row-${key}`);

  // ---- Filters: applied as you type; the form still works without this script.
  function applyFilters() {
    const data = new FormData(form);
    const needle = (data.get("q") || "").toString().trim().toLowerCase();
    const source = (data.get("source") || "").toString();
    const only = (name) => data.get(name) !== null;
    let shown = 0;
    for (const row of rows()) {
      const d = row.dataset;
      const visible =
        (!needle || row.querySelector("th.key").textContent.toLowerCase().includes(needle)) &&
        (!source || d.source === source) &&
        (!only("locked") || d.locked === "true") &&
        (!only("sensitive") || d.sensitive === "true") &&
        (!only("pending") || d.pending === "true");
      row.hidden = !visible;
      const editor = row.nextElementSibling;
      if (editor && editor.classList.contains("editor-row")) editor.hidden = !visible;
      if (visible) shown += 1;
    }
    count.textContent = `${shown} of ${rows().length} keys`;
    const params = new URLSearchParams();
    for (const [k, v] of data.entries()) if (v) params.set(k, v);
    history.replaceState(null, "", `${location.pathname}?${params}`);
  }
  if (form) {
    // Namespace and category change the rows the server sends; the rest filters the rows at hand.
    // Selects announce a pick with `change` (and not always `input`); typing comes as `input`.
    const onFilter = (e) => {
      if (e.target.name === "ns" || e.target.name === "category") {
        if (e.type === "change") form.submit();
      } else applyFilters();
    };
    form.addEventListener("input", onFilter);
    form.addEventListener("change", onFilter);
  }

  // ---- A row shows an item of the API.
  function render(row, item) {
    const d = row.dataset;
    d.version = item.version;
    d.source = item.source;
    d.pending = String(item.pending_restart);
    const val = row.querySelector(".val");
    val.textContent = valueText(item.value);
    val.title = valueText(item.value);
    const cell = row.querySelector("td.value");
    for (const p of cell.querySelectorAll(".pending, .error")) p.remove();
    if (item.pending_restart && item.pending_value !== undefined) {
      cell.append(el("span", { class: "pending" }, "pending restart: ", el("code", {}, valueText(item.pending_value))));
    }
    const badge = row.querySelector("td.source .badge");
    badge.className = `badge source-${item.source}`;
    badge.textContent = item.source;
    const flags = row.querySelector("td.flags");
    const pendingBadge = flags.querySelector(".badge.pending");
    if (item.pending_restart && !pendingBadge) flags.append(el("span", { class: "badge pending" }, "pending restart"));
    if (!item.pending_restart && pendingBadge) pendingBadge.remove();
    const updated = row.querySelector("td.updated");
    updated.replaceChildren();
    if (item.updated_at) {
      updated.append(cfg.time(item.updated_at));
      if (item.updated_by) updated.append(el("span", { class: "by" }, `by ${item.updated_by}`));
    } else updated.append(el("span", { class: "muted" }, "never changed"));
  }

  function flash(row) {
    row.classList.remove("flash");
    void row.offsetWidth;
    row.classList.add("flash");
  }

  // ---- The editor: one row below the key's row.
  const editors = new Map();

  function jsonEditor(id, initial, onState) {
    const gutter = el("pre", { class: "gutter", "aria-hidden": "true" });
    const area = el("textarea", { id, class: "json", spellcheck: "false", rows: 8, "aria-describedby": `${id}-parse` });
    area.value = initial;
    const parse = el("p", { id: `${id}-parse`, class: "parse", "aria-live": "polite" });
    const numbers = () => {
      const n = area.value.split("\n").length;
      gutter.textContent = Array.from({ length: n }, (_, i) => i + 1).join("\n");
      gutter.scrollTop = area.scrollTop;
    };
    const check = () => {
      numbers();
      try {
        const value = JSON.parse(area.value);
        parse.textContent = "Valid JSON.";
        parse.className = "parse ok";
        onState(true, value);
      } catch (e) {
        const { line, col } = cfg.jsonPosition(area.value, e.message);
        parse.textContent = `JSON error at line ${line}, column ${col}: ${e.message}`;
        parse.className = "parse bad";
        onState(false);
      }
    };
    area.addEventListener("input", check);
    area.addEventListener("scroll", () => (gutter.scrollTop = area.scrollTop));
    const pretty = el("button", { type: "button", class: "small", onclick: () => {
      try {
        area.value = JSON.stringify(JSON.parse(area.value), null, 2);
        check();
      } catch (e) {
        check();
      }
    } }, "Pretty-print");
    setTimeout(check);
    return { node: el("div", { class: "json-editor" }, el("div", { class: "json-box" }, gutter, area), el("div", { class: "json-tools" }, pretty, parse)), area };
  }

  async function open(row) {
    const key = row.dataset.key;
    if (editors.has(key)) {
      editors.get(key).control.focus();
      return;
    }
    // The editor starts from the key as it is now, and its version is what If-Match sends.
    const fresh = await api("GET", `/admin/config/${encodeURIComponent(key)}`);
    if (!fresh.ok) {
      announce(`Cannot open ${key}: ${fresh.message}`);
      return;
    }
    if (editors.has(key)) return;
    render(row, fresh.body);
    const d = row.dataset;
    const bare = key.slice(key.indexOf(":") + 1);
    const id = `edit-${key.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const current = fresh.body.value;
    const structured = d.type === "json" || d.type === "list";
    const state = { row, key, version: d.version, valid: true, parsed: undefined, started: d.version };
    let control;
    let field;
    if (structured) {
      const editor = jsonEditor(id, JSON.stringify(current, null, 2), (ok, value) => {
        state.valid = ok;
        state.parsed = value;
        save.disabled = !ok;
      });
      control = editor.area;
      field = editor.node;
    } else if (d.choices) {
      control = el("select", { id });
      for (const c of JSON.parse(d.choices)) {
        control.append(el("option", { value: c, selected: valueText(current) === c }, c));
      }
      field = control;
    } else if (d.sensitive === "true") {
      control = el("input", { id, type: "password", autocomplete: "new-password", placeholder: "a new value (the current one is never shown)" });
      field = control;
    } else {
      control = el("input", { id, type: "text", value: valueText(current) });
      field = control;
    }
    const error = el("p", { class: "error", role: "alert", id: `${id}-error` });
    control.setAttribute("aria-describedby", `${id}-error ${control.getAttribute("aria-describedby") || ""}`.trim());
    const notice = el("div", { class: "notice", role: "status", hidden: true });
    const reason = el("input", { id: `${id}-reason`, type: "text", placeholder: "why (recorded in the audit trail)" });
    const save = el("button", { type: "submit", class: "primary" }, "Save");
    const reset = d.source === "db" ? el("button", { type: "button", class: "reset" }, "Reset to default") : null;
    const cancel = el("button", { type: "button" }, "Cancel");
    const formEl = el("form", { class: "editor", "aria-label": `Edit ${bare}` },
      el("label", { for: id }, `New value of ${bare}`, el("span", { class: "muted" }, ` (${d.type})`)),
      field,
      error,
      notice,
      el("label", { for: `${id}-reason` }, "Reason"),
      reason,
      el("div", { class: "buttons" }, save, reset, cancel));
    const editorRow = el("tr", { class: "editor-row" }, el("td", { colspan: 6 }, formEl));
    row.after(editorRow);
    Object.assign(state, { control, error, notice, reason, save, editorRow, formEl });
    editors.set(key, state);
    formEl.addEventListener("submit", (e) => {
      e.preventDefault();
      submit(state, state.version);
    });
    cancel.addEventListener("click", () => close(state));
    if (reset) reset.addEventListener("click", () => resetKey(state));
    formEl.addEventListener("keydown", (e) => {
      if (e.key === "Escape") close(state);
    });
    control.focus();
  }

  function close(state) {
    state.editorRow.remove();
    editors.delete(state.key);
    const button = state.row.querySelector("button.edit");
    if (button) button.focus();
  }

  function body(state) {
    const d = state.row.dataset;
    if (d.type === "json" || d.type === "list") return { value: state.parsed, reason: state.reason.value || undefined };
    return { text: state.control.value, reason: state.reason.value || undefined };
  }

  async function submit(state, version) {
    if (!state.valid) {
      state.error.textContent = "Fix the JSON first: the error above says where.";
      return;
    }
    if (state.row.dataset.sensitive === "true" && state.control.value === "") {
      state.error.textContent = "Enter the new value: an empty field would store an empty secret. To go back to the default, use Reset.";
      state.control.focus();
      return;
    }
    state.error.textContent = "";
    state.save.disabled = true;
    const res = await api("PUT", `/admin/config/${encodeURIComponent(state.key)}`, body(state), { "If-Match": `"${version}"` });
    state.save.disabled = false;
    if (res.ok) {
      render(state.row, res.body);
      close(state);
      flash(state.row);
      announce(`Saved ${res.body.key}.`);
      return;
    }
    if (res.status === 409) return conflict(state);
    state.error.textContent = advice(res);
    state.control.setAttribute("aria-invalid", "true");
    state.control.focus();
  }

  function advice(res) {
    switch (res.status) {
      case 422:
      case 400:
        return `${res.message} Correct the value and save again.`;
      case 403:
        return `${res.message}`;
      case 429:
        return `${res.message} Wait a moment, then save again.`;
      default:
        return res.message;
    }
  }

  async function conflict(state) {
    const res = await api("GET", `/admin/config/${encodeURIComponent(state.key)}`);
    if (!res.ok) {
      state.error.textContent = `This key changed since you opened it, and reading it again failed: ${res.message}`;
      return;
    }
    const theirs = res.body;
    const mine = body(state);
    const who = theirs.updated_by ? `by ${theirs.updated_by}` : "";
    state.error.replaceChildren(
      el("strong", {}, "Conflict: "),
      `this key changed since you opened it (version ${state.version} → ${theirs.version}) `, who, theirs.updated_at ? " at " : "",
      theirs.updated_at ? cfg.time(theirs.updated_at) : "", ".",
      el("dl", { class: "conflict" },
        el("dt", {}, "Their value"), el("dd", {}, el("code", { class: "theirs" }, valueText(theirs.value))),
        el("dt", {}, "Your value"), el("dd", {}, el("code", { class: "mine" }, state.row.dataset.sensitive === "true" ? "(your new value, not shown)" : mine.value !== undefined ? JSON.stringify(mine.value) : mine.text))),
      el("button", { type: "button", class: "primary", onclick: () => submit(state, theirs.version) }, "Save mine over theirs"),
      " ",
      el("button", { type: "button", onclick: () => { render(state.row, theirs); close(state); flash(state.row); } }, "Keep theirs"));
  }

  async function resetKey(state) {
    state.error.textContent = "";
    const reason = state.reason.value ? `?reason=${encodeURIComponent(state.reason.value)}` : "";
    const res = await api("DELETE", `/admin/config/${encodeURIComponent(state.key)}${reason}`, null, { "If-Match": `"${state.version}"` });
    if (res.ok) {
      render(state.row, res.body);
      close(state);
      flash(state.row);
      announce(`Reset ${res.body.key}: it is now ${res.body.source === "env" ? "the environment's value" : "its default"}.`);
    } else if (res.status === 409) conflict(state);
    else state.error.textContent = advice(res);
  }

  table.addEventListener("click", (e) => {
    const button = e.target.closest("button.edit");
    if (button) open(button.closest("tr"));
  });

  // ---- Live: changes made elsewhere appear here; a row being edited gets a notice instead.
  async function refresh(key, actor) {
    const row = rowOf(key);
    if (!row) return;
    const editing = editors.get(key);
    const res = await api("GET", `/admin/config/${encodeURIComponent(key)}`);
    if (!res.ok) return;
    if (String(res.body.version) === row.dataset.version) return;
    if (editing) {
      editing.notice.hidden = false;
      editing.notice.replaceChildren(
        `${actor || "Someone"} changed this key while you were editing it; its value is now `,
        el("code", {}, valueText(res.body.value)),
        ". Saving will report a conflict and show both values.");
      return;
    }
    render(row, res.body);
    flash(row);
    announce(`${res.body.key} changed${actor ? ` by ${actor}` : ""}.`);
  }

  cfg.watch({ namespace: table.dataset.namespace, kind: "settings", after: table.dataset.head }, (ev) => {
    const keys = [];
    if (ev.key && ev.namespace) keys.push(`${ev.namespace}:${ev.key}`);
    for (const c of ev.changes || []) keys.push(`${c.namespace}:${c.key}`);
    for (const k of keys) refresh(k, ev.actor);
  });
})();
