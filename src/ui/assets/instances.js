// /ui/instances: the live instances from GET /admin/instances, read again every few seconds without a
// reload (paused while the tab is hidden or the box is cleared), and the chain's verification from
// GET /admin/verify. Statuses are words in badges, never a colour alone.
"use strict";

(() => {
  const { el, api, announce } = cfg;
  const table = document.getElementById("instances");
  if (!table) return;
  const tbody = table.tBodies[0];
  const summary = document.getElementById("inst-summary");
  const error = document.getElementById("inst-error");
  const refreshed = document.getElementById("refreshed");
  const auto = document.getElementById("auto-refresh");
  const every = Number(table.dataset.refresh || 5) * 1000;
  const shown = Number(table.dataset.shown || 500);
  const show = document.getElementById("inst-show");

  const BADGE = { converged: "good", behind: "pending", stale: "pending", diverged: "bad", ahead: "" };
  const short = (hash) => (hash || "").slice(0, 12);

  function ago(secs) {
    if (secs < 1) return "just now";
    if (secs < 90) return `${Math.round(secs)} s ago`;
    return `${Math.round(secs / 60)} min ago`;
  }

  /** What the status means for this instance, in words. */
  function why(i) {
    switch (i.status) {
      case "converged":
        return "at the head";
      case "behind":
        return `${i.lag} event${i.lag === 1 ? "" : "s"} behind`;
      case "stale":
        return i.staleness_secs ? `out of date for ${Math.round(i.staleness_secs)} s` : "says its configuration may be out of date";
      case "ahead":
        return "past this server's head";
      case "diverged":
        return `hash is not the log's at seq ${i.applied_seq}`;
      default:
        return "";
    }
  }

  function row(i) {
    const labels = Object.entries(i.labels || {}).map(([k, v]) => el("span", { class: "badge" }, `${k}=${v}`));
    const what = i.kind === "server"
      ? [i.listen ? el("span", { class: "by" }, i.listen) : null]
      : [i.namespace ? el("span", { class: "by" }, `namespace ${i.namespace}${i.origin ? ` · from ${i.origin}` : ""}`) : null];
    return el("tr", { class: `status-${i.status}`, "data-id": i.id, "data-status": i.status },
      el("th", { scope: "row", class: "inst" },
        el("code", { class: "id" }, i.id),
        " ", el("span", { class: "badge kind" }, i.kind),
        i.self ? el("span", { class: "badge self" }, "this server") : null,
        el("span", { class: "by" }, `${i.host} · pid ${i.pid} · v${i.version}`),
        ...what,
        labels.length ? el("span", { class: "labels" }, labels) : null,
        ...(i.rollouts || []).map((r) => el("span", { class: "by rollout" },
          el("a", { href: `/ui/rollouts?id=${encodeURIComponent(r.id)}` }, `rollout ${r.id}`),
          `: ${r.new_values ? "new values" : "main values"} (stage ${r.stage}, ${r.percent} %)`)),
        i.healthy === false ? el("span", { class: "badge bad" }, "reports unhealthy") : null,
        i.child ? el("span", { class: "by" }, `child ${i.child.state}${i.child.last_exit ? ` (last exit ${i.child.last_exit})` : ""}`) : null,
        i.error ? el("span", { class: "error by" }, `Last problem: ${i.error}`) : null),
      el("td", { class: "status", "data-label": "Status" }, el("span", { class: `badge ${BADGE[i.status] || ""}` }, i.status), el("span", { class: "by" }, why(i))),
      el("td", { class: "num", "data-label": "Applied seq" }, String(i.applied_seq)),
      el("td", { "data-label": "Head hash" }, el("code", { title: i.head_hash }, `${short(i.head_hash)}…`),
        el("span", { class: "visually-hidden" }, ` full hash ${i.head_hash}`),
        i.matches_log === false ? el("span", { class: "by error" }, "not the log's hash") : null),
      el("td", { class: "num", "data-label": "Lag" }, String(i.lag)),
      el("td", { "data-label": "Last heartbeat" }, cfg.time(i.last_seen), el("span", { class: "by" }, ago(i.age_secs))));
  }

  // One read at a time; a filter changed during a read is read right after it, so the list never shows an
  // answer to an older filter last.
  let busy = false;
  let again = false;
  async function load() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    const filter = show.value ? `&status=${encodeURIComponent(show.value)}` : "";
    const res = await api("GET", `/admin/instances?limit=${shown}${filter}`);
    busy = false;
    if (again) {
      again = false;
      load();
      return;
    }
    if (!res.ok) {
      error.textContent = `Cannot read the instances: ${res.message}${res.status === 0 ? "" : " The list shows the last answer; it is read again shortly."}`;
      return;
    }
    error.textContent = "";
    const list = res.body;
    const before = new Map(Array.from(tbody.rows).map((r) => [r.dataset.id, r.dataset.status]));
    tbody.replaceChildren(...list.instances.map(row));
    const label = show.options[show.selectedIndex].text;
    let empty = "No instance sent a heartbeat in the last few seconds.";
    if (list.total && show.value) empty = show.value.includes(",") ? "Every instance is converged." : `No instance is ${label}.`;
    if (!list.instances.length) tbody.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, empty)));
    const counts = Object.entries(list.by_status || {}).map(([s, n]) => `${n} ${s}`).join(", ");
    let narrowed = "";
    if (show.value) narrowed = ` Showing ${list.truncated ? `the first ${list.instances.length} of ${list.matched}` : list.instances.length}: ${label}.`;
    else if (list.truncated) narrowed = ` Showing the first ${list.instances.length}; choose a status to narrow the list.`;
    summary.replaceChildren(
      `${list.total} instance${list.total === 1 ? "" : "s"}${counts ? `: ${counts}` : ""}. `,
      list.converged ? el("strong", { class: "ok" }, "All converged.") : el("strong", { class: "error" }, "Not all converged."),
      narrowed);
    document.getElementById("log-head").textContent = String(list.head);
    const hash = document.getElementById("log-hash");
    hash.textContent = short(list.head_hash);
    hash.title = list.head_hash;
    refreshed.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    // Say what changed, for screen readers, without repeating the whole table.
    for (const i of list.instances) {
      const was = before.get(i.id);
      if (was && was !== i.status) announce(`${i.id} is now ${i.status}.`);
    }
  }

  let timer = null;
  function schedule() {
    clearInterval(timer);
    timer = null;
    if (auto.checked && !document.hidden) timer = setInterval(load, every);
  }
  auto.addEventListener("change", schedule);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && auto.checked) load();
    schedule();
  });
  document.getElementById("refresh-now").addEventListener("click", load);
  show.addEventListener("change", load);
  load();
  schedule();

  // ---- Verify the chain.
  const verify = document.getElementById("verify");
  if (!verify) return;
  const out = document.getElementById("verify-result");
  verify.addEventListener("click", async () => {
    verify.disabled = true;
    out.replaceChildren(el("p", { class: "muted" }, "Verifying the chain…"));
    const started = performance.now();
    const res = await api("GET", "/admin/verify");
    const took = ((performance.now() - started) / 1000).toFixed(1);
    verify.disabled = false;
    if (res.ok) {
      const r = res.body;
      const good = r.status === "ok";
      const bad = (r.snapshots && r.snapshots.bad) || [];
      out.replaceChildren(el("div", { class: `verify-box ${good ? "ok-notice" : "notice"}`, id: "verify-status", role: "status", tabindex: "-1" },
        el("p", {}, el("strong", {}, good ? "OK: the chain is intact." : "The chain is intact, but a checkpoint differs from the replay."), ` Checked in ${took} s.`),
        el("dl", { class: "provenance" },
          el("dt", {}, "Head seq"), el("dd", { id: "verify-seq" }, String(r.head.seq)),
          el("dt", {}, "Head hash"), el("dd", {}, el("code", { title: r.head.hash, class: "hash" }, r.head.hash)),
          el("dt", {}, "Checkpoints"), el("dd", {}, `${(r.snapshots.ok || []).length} match the replay${bad.length ? `, ${bad.length} do not` : ""}`),
          ...bad.flatMap((b) => [el("dt", {}, `Checkpoint at seq ${b.seq}`), el("dd", { class: "error" }, b.problem)])),
        bad.length ? el("p", {}, "Reads ignore a bad checkpoint; run ", el("code", {}, "cfgledger verify"), " on the server and remove it with the store's tools, or restore a backup.") : null));
      document.getElementById("verify-status").focus();
      announce(good ? "The chain verified." : "A checkpoint differs from the replay.");
      return;
    }
    const details = res.body && res.body.error && res.body.error.details;
    const seq = details && details.seq;
    if (seq !== undefined && seq !== null) {
      out.replaceChildren(el("div", { class: "error verify-box", role: "alert", id: "verify-status", tabindex: "-1" },
        el("p", {}, el("strong", {}, `Broken at seq ${seq}.`), " The server says: ", el("q", {}, res.message), "."),
        el("p", {}, "Events from this seq on cannot be trusted. Stop writers, run ", el("code", {}, `cfgledger verify`),
          " on the server to confirm, and restore the store from a backup taken before it (or compare with a replica).")));
      document.getElementById("verify-status").focus();
      announce(`The chain is broken at seq ${seq}.`);
      return;
    }
    out.replaceChildren(el("p", { class: "error", role: "alert" }, `Cannot verify: ${res.message}${res.status === 403 ? " Verification needs the auditor or platform_admin role." : " Try again; if it persists, see the server's log."}`));
  });
})();
