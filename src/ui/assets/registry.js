// /ui/registry: deletes from the list (a 409 shows its referrers as links), and the entity editor: common
// fields and the JSON body kept in step, client-side JSON errors with line and column, write-only
// credentials, and saves through POST /{kind} and PUT /{kind}/{name}. The rules stay on the server: this
// file shows its answers.
"use strict";

(() => {
  const { el, api, announce } = cfg;
  const KINDS = ["gateways", "servers", "tools", "prompts", "resources", "roots"];
  const SINGULAR = { gateways: "gateway", servers: "server", tools: "tool", prompts: "prompt", resources: "resource", roots: "root" };

  const itemUrl = (kind, name) => `/ui/registry/${kind}/item?name=${encodeURIComponent(name)}`;
  const apiUrl = (kind, name) => `/${kind}${name === undefined ? "" : `/${encodeURIComponent(name)}`}`;

  /** The `KIND/NAME`s a 409's message names ("tool t is referenced by servers/a, servers/b"). */
  function referrers(message) {
    const m = /referenced by (.*)$/.exec(message || "");
    if (!m) return [];
    const out = [];
    for (const part of m[1].split(", ")) {
      const slash = part.indexOf("/");
      const kind = part.slice(0, slash);
      if (slash > 0 && KINDS.includes(kind)) out.push({ kind, name: part.slice(slash + 1) });
    }
    return out;
  }

  /** An API error as a sentence with what to do next; a 409 on delete lists the referrers as links. */
  function explain(target, res, what) {
    target.replaceChildren();
    const refs = res.status === 409 ? referrers(res.message) : [];
    if (refs.length) {
      target.append(
        el("strong", {}, "Cannot delete: "), `${res.message}. `,
        "Remove the link from each of these first (edit it, or delete it), then delete again: ",
        el("ul", { class: "referrers" }, refs.map((r) => el("li", {}, el("a", { href: itemUrl(r.kind, r.name) }, `${SINGULAR[r.kind]} ${r.name}`)))));
      return;
    }
    let next = "";
    switch (res.status) {
      case 400:
      case 422:
        next = " Correct the fields or the JSON body and try again.";
        break;
      case 403:
        next = " Only a platform_admin can change the registry.";
        break;
      case 404:
        next = " It no longer exists: go back to the list and reload it.";
        break;
      case 409:
        next = what === "create" ? " Pick another name, or edit the existing one." : " Reload the page to see the current state, then try again.";
        break;
      case 413:
        next = " The body is too large for REQUEST_SIZE_LIMIT: make it smaller.";
        break;
      case 429:
        next = " Wait a moment, then try again.";
        break;
      default:
        break;
    }
    const m = res.message || "";
    target.append(`${m.charAt(0).toUpperCase()}${m.slice(1)}.${next}`.replace(/\.\.(\s|$)/, ".$1"));
  }

  // ---- The list: delete with an inline confirmation.
  const table = document.getElementById("registry");
  if (table) {
    const kind = table.dataset.kind;
    const error = document.getElementById("registry-error");
    table.addEventListener("click", async (e) => {
      const button = e.target.closest("button");
      if (!button) return;
      const row = button.closest("tr");
      const name = row.dataset.name;
      if (button.classList.contains("delete")) {
        const cell = button.parentElement;
        if (cell.querySelector(".confirm")) return;
        const yes = el("button", { type: "button", class: "danger small confirm-delete" }, "Delete");
        const no = el("button", { type: "button", class: "small" }, "Keep");
        const box = el("span", { class: "confirm", role: "group", "aria-label": `Confirm deleting ${name}` }, `Delete ${name}? `, yes, " ", no);
        button.hidden = true;
        cell.append(box);
        yes.focus();
        const cancel = () => { box.remove(); button.hidden = false; button.focus(); };
        no.addEventListener("click", cancel);
        box.addEventListener("keydown", (ev) => {
          if (ev.key === "Escape") cancel();
        });
        yes.addEventListener("click", async () => {
          yes.disabled = true;
          const res = await api("DELETE", apiUrl(kind, name));
          if (res.ok) {
            announce(`Deleted ${SINGULAR[kind]} ${name}.`);
            // Keep the keyboard's place: the next row's link, else the previous one's, else the page.
            const near = row.nextElementSibling || row.previousElementSibling;
            row.remove();
            error.replaceChildren();
            const target = near ? near.querySelector("a") : document.getElementById("main");
            if (target) target.focus();
            return;
          }
          box.remove();
          button.hidden = false;
          explain(error, res, "delete");
          error.scrollIntoView({ block: "nearest" });
          button.focus();
        });
      }
    });
  }

  // ---- Live: changes made elsewhere are announced with a way to see them; nothing on screen is replaced
  // under the operator's hands.
  const live = document.getElementById("registry-live");
  if (live) {
    const lk = live.dataset.kind;
    const only = live.dataset.name;
    const seen = [];
    const VERB = { ResourceCreated: "created", ResourceUpdated: "changed", ResourceDeleted: "deleted" };
    cfg.watch({ kind: "registry", prefix: only === undefined ? `${lk}/` : `${lk}/${only}`, after: live.dataset.head }, (ev) => {
      if (!ev.key || (only !== undefined && ev.key !== `${lk}/${only}`)) return;
      const name = ev.key.slice(lk.length + 1);
      const verb = VERB[ev.kind] || "changed";
      const row = table && Array.from(table.tBodies[0].rows).find((r) => r.dataset.name === name);
      if (row && !row.querySelector(".badge.changed")) row.querySelector("th").append(" ", el("span", { class: "badge changed pending" }, verb));
      seen.push(`${SINGULAR[lk]} ${name} ${verb} by ${ev.actor}`);
      live.hidden = false;
      const params = new URLSearchParams(location.search);
      params.delete("saved");
      const here = only === undefined ? `${location.pathname}?${params}` : itemUrl(lk, only);
      live.replaceChildren(
        el("strong", {}, only === undefined ? "Changed elsewhere: " : "Changed while you were here: "),
        `${seen.slice(-3).join("; ")}. `,
        only === undefined ? "" : "Saving will ask before replacing their change. ",
        el("a", { href: here }, only === undefined ? "Reload the list" : "Reload to see theirs"));
      announce(`${seen[seen.length - 1]}.`);
    });
  }

  // ---- The editor.
  const form = document.getElementById("entity-form");
  if (!form) return;
  const d = form.dataset;
  const kind = d.kind;
  const area = document.getElementById("e-json");
  const gutter = form.querySelector(".gutter");
  const parse = document.getElementById("e-json-parse");
  const error = document.getElementById("entity-error");
  const notice = document.getElementById("entity-notice");
  const save = document.getElementById("e-save");
  const inputs = Array.from(form.querySelectorAll("[data-field]"));
  let parsed = null;

  function numbers() {
    const n = area.value.split("\n").length;
    gutter.textContent = Array.from({ length: n }, (_, i) => i + 1).join("\n");
    gutter.scrollTop = area.scrollTop;
  }

  /** Parses the body; shows where it is wrong. */
  function check() {
    numbers();
    try {
      const value = JSON.parse(area.value);
      if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("the body must be a JSON object { ... }");
      parsed = value;
      parse.textContent = "Valid JSON.";
      parse.className = "parse ok";
      area.removeAttribute("aria-invalid");
      return true;
    } catch (e) {
      parsed = null;
      const { line, col } = cfg.jsonPosition(area.value, e.message);
      parse.textContent = /must be a JSON object/.test(e.message) ? "The body must be a JSON object { ... }." : `JSON error at line ${line}, column ${col}: ${e.message}`;
      parse.className = "parse bad";
      area.setAttribute("aria-invalid", "true");
      return false;
    }
  }

  const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

  /** The form's fields from the body. */
  function toForm() {
    for (const input of inputs) {
      const f = input.dataset.field;
      const v = parsed[f];
      if (input.dataset.type === "bool") input.checked = v !== false;
      else if (input.dataset.type === "list") input.value = Array.isArray(v) ? v.join(", ") : "";
      else input.value = typeof v === "string" ? v : v === undefined || v === null ? "" : JSON.stringify(v);
    }
  }

  /** The body from a field of the form. */
  function fromField(input) {
    if (!check()) {
      error.textContent = "Fix the JSON body first (the message under it says where); the form follows it once it parses.";
      return;
    }
    error.textContent = "";
    const f = input.dataset.field;
    if (input.dataset.type === "bool") {
      // Absent means active: a field that was there is set, one that was not stays out.
      if (!input.checked) parsed[f] = false;
      else if (f in parsed) parsed[f] = true;
    } else if (input.dataset.type === "list") parsed[f] = list(input.value);
    else if (input.value === "" && f !== d.idField) delete parsed[f];
    else parsed[f] = input.value;
    area.value = JSON.stringify(parsed, null, 2);
    numbers();
  }

  for (const input of inputs) input.addEventListener(input.type === "checkbox" ? "change" : "input", () => fromField(input));
  area.addEventListener("input", () => {
    if (check()) toForm();
  });
  area.addEventListener("scroll", () => (gutter.scrollTop = area.scrollTop));
  document.getElementById("e-pretty").addEventListener("click", () => {
    if (check()) {
      area.value = JSON.stringify(parsed, null, 2);
      numbers();
    }
  });
  check();

  // ---- Credentials: write-only fields, sent only when filled.
  const cType = document.getElementById("c-type");
  const cUser = document.getElementById("c-user");
  const cSecret = document.getElementById("c-secret");
  const cRemove = document.getElementById("c-remove");
  function credentialFields() {
    if (!cType) return;
    const t = cType.value;
    const userBox = cUser.closest(".field");
    userBox.hidden = t === "bearer";
    document.getElementById("c-user-label").textContent = t === "basic" ? "User name" : "Header name";
    cUser.placeholder = t === "headers" ? "e.g. X-Api-Key" : "";
  }
  if (cType) {
    cType.addEventListener("change", credentialFields);
    credentialFields();
    if (cRemove) {
      cRemove.addEventListener("change", () => {
        for (const c of [cType, cUser, cSecret]) c.disabled = cRemove.checked;
      });
    }
  }

  /** The credential fields the API takes, or null when none is filled; an error text when half filled. */
  function credential() {
    if (!cType) return null;
    if (cRemove && cRemove.checked) return { auth_type: null };
    const secret = cSecret.value;
    const user = cUser.value.trim();
    if (!secret && !user) return null;
    switch (cType.value) {
      case "bearer":
        return secret ? { auth_type: "bearer", auth_token: secret } : "Enter the token to replace the credential, or clear the fields to keep it.";
      case "basic":
        return secret && user ? { auth_type: "basic", auth_username: user, auth_password: secret } : "Basic needs both a user name and a password.";
      default:
        return secret && user ? { auth_type: "headers", auth_header_key: user, auth_header_value: secret } : "A header credential needs the header's name and its value.";
    }
  }

  async function send(version) {
    error.textContent = "";
    if (!check()) {
      error.textContent = "Fix the JSON body first: the message under it says where.";
      area.focus();
      return;
    }
    const cred = credential();
    if (typeof cred === "string") {
      error.textContent = cred;
      cSecret.focus();
      return;
    }
    const body = Object.assign({}, parsed, cred || {});
    const creating = d.mode === "create";
    save.disabled = true;
    // An edit is compare-and-set: the API refuses it (409) if the entity changed since this page read it.
    const res = creating
      ? await api("POST", apiUrl(kind), body)
      : await api("PUT", apiUrl(kind, d.name), body, { "If-Match": `"${version || d.version}"` });
    save.disabled = false;
    if (res.ok) {
      if (cSecret) cSecret.value = "";
      const name = res.body[d.idField] || d.name;
      location.assign(`/ui/registry/${kind}?saved=${encodeURIComponent(name)}`);
      return;
    }
    if (res.status === 409 && !creating) {
      const now = await api("GET", apiUrl(kind, d.name));
      if (now.ok && String(now.body.version) !== d.version) {
        notice.hidden = false;
        notice.replaceChildren(
          el("strong", {}, "Changed meanwhile: "),
          `this ${SINGULAR[kind]} was changed since you opened it (version ${d.version} → ${now.body.version}, at `, cfg.time(now.body.updated_at), "). ",
          "Nothing was saved. ",
          el("button", { type: "button", class: "primary small", onclick: () => send(String(now.body.version)) }, "Save mine over theirs"), " ",
          el("a", { href: itemUrl(kind, d.name) }, "Reload theirs"));
        notice.scrollIntoView({ block: "nearest" });
        return;
      }
    }
    explain(error, res, creating ? "create" : "save");
    error.scrollIntoView({ block: "nearest" });
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    send(false);
  });

  const del = document.getElementById("e-delete");
  if (del) {
    del.addEventListener("click", async () => {
      if (del.dataset.armed !== "1") {
        del.dataset.armed = "1";
        del.textContent = `Confirm: delete ${d.name}`;
        announce(`Press again to delete ${SINGULAR[kind]} ${d.name}.`);
        return;
      }
      del.disabled = true;
      const res = await api("DELETE", apiUrl(kind, d.name), null, { "If-Match": `"${d.version}"` });
      del.disabled = false;
      del.dataset.armed = "";
      del.textContent = "Delete…";
      if (res.ok) {
        location.assign(`/ui/registry/${kind}`);
        return;
      }
      explain(error, res, "delete");
    });
  }
})();
