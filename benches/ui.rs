//! The web UI at issue 16's scale: a SQLite store of 1,000,000 events over the built-in catalog (MCP
//! Gateway's ~850 keys and cfgledger's own), built through the ledger with the time-travel bench's workload,
//! served in-process on loopback and read over HTTP/1.1 with a session cookie, as a browser would:
//!
//! 1. the settings page (`GET /ui/settings`, every key of the default namespace; target p50 < 20 ms), beside
//!    `config list` alone (the use case the page calls: the store alone) and `GET /health` (a bare axum
//!    handler on the same server) as references measured in the same run;
//! 2. the first audit page (`GET /ui/audit`; target p50 < 50 ms), beside `timetravel::audit` alone;
//! 3. the first screen's transferred bytes: the settings page, its stylesheet and scripts, as a browser that
//!    accepts gzip receives them (aim < 100 KB).
//!
//! Timings are reported, never asserted; what is asserted is that each answer is what it should be.
//! `cargo bench --bench ui` runs it at full size; `cargo test --benches` on a store of 5,000 events.

mod common;

use cfgledger::auth::{Role, TokenKeys};
use cfgledger::model::ListQuery;
use cfgledger::usecase::{settings, timetravel};
use cfgledger::{Ledger, WriteContext};
use cfgledger_events::{Cause, Command};
use std::hint::black_box;
use std::io::Read;
use std::time::Duration;

const SECRET: &str = "ui-bench-secret-0123456789abcdef-0123456789";
const JWT: &[u8] = b"ui-bench-signing-key-0123456789abcdef-0123";

fn open(db: &std::path::Path) -> Ledger {
    common::workload::open_builtin(db, SECRET)
}

fn build(rt: &tokio::runtime::Runtime, ledger: &Ledger, events: u64, wave: usize) {
    let (work, took) = common::workload::fill(rt, ledger, events, wave);
    println!(
        "ui: built a store of {} events in {:.1} s ({} keys written, {} actors)",
        ledger.snapshot().head.seq,
        took.as_secs_f64(),
        work.keys.len(),
        work.actors.len()
    );
}

/// The user the session belongs to (a session's user must exist), and the UI turned on: the workload writes
/// every writable key, `cfgledger:UI_ENABLED` included.
fn add_admin(ledger: &Ledger) {
    let ctx = WriteContext {
        actor: common::actor(),
        cause: Cause::Cli { command: "bench".into() },
        reason: None,
        bypass: false,
    };
    let on = Command::Set { key: "cfgledger:UI_ENABLED".into(), value: cfgledger_events::Input::Json(true.into()) };
    ledger.execute(on, ctx.clone()).expect("the UI turned on");
    let hash = cfgledger::auth::hash_password("bench-password-0123").expect("a password hash");
    let cmd = Command::AddUser { name: "bench".into(), role: "platform_admin".into(), password_hash: hash };
    ledger.execute(cmd, ctx).expect("the bench user");
}

/// Serves `ledger` on a loopback port; returns the base URL, a session cookie and the closing switch.
fn serve(rt: &tokio::runtime::Runtime, ledger: Ledger) -> (String, String, tokio::sync::watch::Sender<bool>) {
    let keys = TokenKeys::new(JWT, "HS256").expect("keys");
    let now = cfgledger::auth::unix_seconds(ledger.now());
    // The session's user exists: its token carries the user's credential version, as a login's does.
    let ver = cfgledger::auth::credential_version(&ledger.snapshot().state, "bench");
    let token = keys.issue_versioned("bench", Role::PlatformAdmin, ver, now, 3600).expect("a token");
    let (url, closing) = common::in_process::serve(rt, ledger, keys, Duration::from_secs(30));
    (url, format!("cfgledger_session={token}"), closing)
}

/// One GET as a browser sends it (the cookie, gzip accepted): the status and the bytes on the wire.
fn get(agent: &ureq::Agent, url: &str, cookie: &str) -> (u16, usize, String) {
    let response = agent.get(url).set("Cookie", cookie).set("Accept-Encoding", "gzip").call().expect("an answer");
    let status = response.status();
    let encoding = response.header("content-encoding").unwrap_or("identity").to_string();
    let mut body = Vec::new();
    response.into_reader().read_to_end(&mut body).expect("a body");
    (status, body.len(), encoding)
}

fn main() {
    let full = common::full_run();
    let (events, wave, n) = if full { (1_000_000, 2048, 200) } else { (5_000, 256, 5) };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ledger = open(&dir.path().join("ui.db"));
    build(&rt, &ledger, events, wave);
    add_admin(&ledger);
    let (url, cookie, closing) = serve(&rt, ledger.clone());
    let agent = ureq::AgentBuilder::new().redirects(0).build();

    let (status, _, _) = get(&agent, &format!("{url}/ui/settings"), &cookie);
    assert_eq!(status, 200, "the settings page answers");
    let (status, _, _) = get(&agent, &format!("{url}/ui/audit"), &cookie);
    assert_eq!(status, 200, "the audit page answers");

    let health = common::p50_p95_ms(n, || {
        black_box(get(&agent, &format!("{url}/health"), &cookie));
    });
    let query = ListQuery::default();
    let list = common::p50_p95_ms(n, || {
        black_box(rt.block_on(settings::list(&ledger, &query)).expect("a list"));
    });
    let page = common::p50_p95_ms(n, || {
        black_box(get(&agent, &format!("{url}/ui/settings"), &cookie));
    });
    let filter = timetravel::AuditFilter { limit: Some(50), ..timetravel::AuditFilter::default() };
    let audit_alone = common::p50_p95_ms(n, || {
        black_box(timetravel::audit(&ledger, &filter).expect("an audit page"));
    });
    let audit_page = common::p50_p95_ms(n, || {
        black_box(get(&agent, &format!("{url}/ui/audit"), &cookie));
    });

    let mut first_screen = 0;
    let mut parts = Vec::new();
    for path in ["/ui/settings"]
        .into_iter()
        .map(str::to_string)
        .chain(["app.css", "common.js", "settings.js"].iter().map(|a| cfgledger::ui::assets::url(a)))
    {
        let (status, bytes, encoding) = get(&agent, &format!("{url}{path}"), &cookie);
        assert_eq!(status, 200, "{path}");
        first_screen += bytes;
        parts.push(format!("{} {bytes} B ({encoding})", path.split('?').next().unwrap_or(&path)));
    }
    let _ = closing.send(true);

    let row = |what: &str, (p50, p95): (f64, f64), reference: Option<(&str, (f64, f64))>, target: &str| {
        let ratio = reference.map(|(name, r)| format!("{:.1}× {name}", p50 / r.0)).unwrap_or_default();
        println!("| {what} | p50 {p50:.2} ms, p95 {p95:.2} ms | {ratio} | {target} |");
    };
    println!("\nui bench: {events} events, {n} samples each, load average {}", loadavg());
    println!("| what | time | ratio to reference | target |\n| --- | --- | --- | --- |");
    row("GET /health (bare axum handler, reference)", health, None, "");
    row("config list, default namespace (the store alone, reference)", list, None, "");
    row("GET /ui/settings (server-side render, every key)", page, Some(("config list", list)), "p50 < 20 ms");
    row("timetravel::audit, first page of 50 (reference)", audit_alone, None, "");
    row("GET /ui/audit (first page)", audit_page, Some(("the audit query", audit_alone)), "p50 < 50 ms");
    println!("first screen: {first_screen} bytes transferred ({}); aim < 100 KB", parts.join(", "));
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
