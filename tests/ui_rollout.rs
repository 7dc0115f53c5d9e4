//! Browser test of `/ui/rollouts`: the list, one rollout's stages, transitions and instances (two agents'
//! heartbeats, one matching the label selector), the instances page naming each agent's rollout value,
//! an advance and a rollback (abort) with a reason made through the page, and a viewer who sees no control.
//! Each page is screenshotted and checked by axe-core (`check_page`).

mod api_support;
mod browser_support;

use api_support::{Server, Store};
use browser_support::{Browser, FakeAgent};
use serde_json::{json, Value};

const ADA: (&str, &str) = ("ada", "ada-password-123");
const VIC: (&str, &str) = ("vic", "vic-password-123");
const SECRET: &str = "ui-rollout-secret-81c2";

fn heartbeat(id: &str, zone: &str, seq: u64, hash: &str) -> Value {
    json!({"id": id, "kind": "agent", "namespace": "mcpgateway", "labels": {"zone": zone}, "applied_seq": seq,
           "head_hash": hash, "stale": false, "staleness_secs": 0.0, "origin": "server",
           "host": "h", "pid": 1, "version": "0.1.0", "started_at": "2026-12-04T00:00:00Z"})
}

fn start_rollout(server: &Server, admin: &str) {
    let body = json!({
        "id": "ui-1",
        "changes": [{"key": "MAX_WORKERS", "value": 16}, {"key": "WEBHOOK_SECRET", "text": SECRET}],
        "selector": {"zone": "a"},
        "steps": [50, 100],
        "bake_ms": 3_600_000,
        "check_url": "http://127.0.0.1:9/healthz",
    });
    let r = server.send_json("POST", "/admin/rollouts", Some(admin), &body);
    assert_eq!(r.status, 201, "{:?}", r.json());
}

#[test]
fn the_rollouts_page_shows_stages_and_instances_and_advances_and_rolls_back() {
    let store = Store::new("MAX_WORKERS=4");
    store.add_user(ADA.0, "platform_admin", ADA.1);
    store.add_user(VIC.0, "viewer", VIC.1);
    let admin = store.token("ada", "platform_admin");
    // The driver is off: the page's buttons make every transition (its check URL would fail at once).
    let server = store.serve(&["--rollout-tick", "0s"]);
    let verified = server.get("/admin/verify", &admin).ok_json();
    let (head, hash) =
        (verified["head"]["seq"].as_u64().unwrap(), verified["head"]["hash"].as_str().unwrap().to_string());
    let _a = FakeAgent::start(&server.url, &admin, heartbeat("edge-a", "a", head, &hash));
    let _b = FakeAgent::start(&server.url, &admin, heartbeat("edge-b", "b", head, &hash));
    start_rollout(&server, &admin);

    let b = Browser::start(&server.url, "rollouts");
    b.login(ADA.0, ADA.1);
    b.goto("/ui/rollouts");
    b.wait("#rollouts tr[data-id='ui-1']");
    assert!(b.text("#rollouts tr[data-id='ui-1']").contains("active"));
    assert!(b.text("#rollouts tr[data-id='ui-1']").contains("labels only"));
    b.check_page("rollouts-list");

    b.click("#rollouts tr[data-id='ui-1'] a");
    b.wait(".rollout-detail");
    b.wait_text("#rollout-instances", "agent/edge-a");
    assert!(b.text("#rollout-instances tr[data-instance='agent/edge-a']").contains("new values"));
    assert!(b.text("#rollout-instances tr[data-instance='agent/edge-a']").contains("by selector"));
    assert!(b.text("#rollout-instances tr[data-instance='agent/edge-b']").contains("main values"));
    assert!(b.text("ol.rollout-steps li.current").contains("labels"));
    assert!(b.text(".rollout-detail table.values").contains("********"));
    assert!(!b.source().contains(SECRET), "a rollout's secret never reaches the page");
    b.check_page("rollout-detail");

    // The instances page says which rollout value each agent is meant to run.
    b.goto("/ui/instances");
    b.wait_text("tr[data-id='agent/edge-a']", "rollout ui-1: new values (stage 0, 0 %)");
    b.wait_text("tr[data-id='agent/edge-b']", "rollout ui-1: main values");
    b.check_page("instances-with-rollout");

    // Advance through the page: the next stage (50 %).
    b.goto("/ui/rollouts?id=ui-1");
    b.wait("#ro-advance");
    b.fill("#ro-reason", "canaries fine");
    b.click("#ro-advance");
    b.wait_text("ol.rollout-steps li.current", "50 %");
    assert!(b.text("#transitions").contains("advanced"), "{}", b.text("#transitions"));

    // Roll back (abort) through the page, with a reason; the confirmation is accepted.
    b.js("window.confirm = () => true; return 1", vec![]);
    b.fill("#ro-reason", "error rate up on edge-a");
    b.click("#ro-rollback");
    b.wait_text(".rollout-detail h2", "rolled back");
    assert!(b.text("#transitions").contains("error rate up on edge-a"), "{}", b.text("#transitions"));
    assert!(!b.exists("#ro-rollback"), "an ended rollout offers no control");
    b.check_page("rollout-rolled-back");
    let view = server.get("/admin/rollouts/ui-1", &admin).ok_json();
    assert_eq!(view["status"], "rolled_back");

    // A viewer reads the same page without any control.
    let v = Browser::start(&server.url, "rollouts_viewer");
    v.login(VIC.0, VIC.1);
    let other =
        json!({"id": "ui-2", "changes": [{"key": "MAX_WORKERS", "value": 5}], "steps": [100], "bake_ms": 3_600_000});
    assert_eq!(server.send_json("POST", "/admin/rollouts", Some(&admin), &other).status, 201);
    v.goto("/ui/rollouts?id=ui-2");
    v.wait(".rollout-detail");
    assert!(!v.exists("#ro-advance") && !v.exists("#ro-rollback"));
    v.check_page("rollout-viewer");
}
