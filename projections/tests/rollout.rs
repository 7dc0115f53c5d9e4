//! `decide` and the fold for gradual rollouts, on the real settings projection: what a start refuses, a
//! sensitive value sealed under the rollout's own name, the bake refused unless by hand, transitions that
//! are no-ops once made (what lets racing servers append one event per step), the completion and merge as
//! one batch, who a rollout serves at each stage, and a checkpoint that keeps the rollouts.

mod common;

use cfgledger_events::decide::StartRollout;
use cfgledger_events::event::StoredValue;
use cfgledger_events::rollout::{bucket, RolloutCheck, RolloutStatus};
use cfgledger_events::{Command, Event, Input, RejectionKind, Sealer, Timestamp};
use common::{TestSealer, World};
use serde_json::json;
use std::collections::BTreeMap;

/// The time `World` stamps every batch with.
const AT: Timestamp = Timestamp(1_800_000_000_000_000);

fn start(id: &str, changes: &[(&str, Input)], selector: &[(&str, &str)], steps: &[u8], bake_ms: u64) -> Command {
    Command::StartRollout(StartRollout {
        id: id.into(),
        namespace: "mcpgateway".into(),
        changes: changes.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        selector: selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        steps: steps.to_vec(),
        bake_ms,
        check: RolloutCheck { url: None, timeout_ms: 2000, instance_reports: false },
    })
}

fn advance(id: &str, from_stage: u32, now: Timestamp, manual: bool) -> Command {
    Command::AdvanceRollout { id: id.into(), from_stage, now, manual }
}

fn workers(n: i64) -> (&'static str, Input) {
    ("MAX_WORKERS", Input::Json(json!(n)))
}

#[test]
fn a_start_refuses_bad_steps_taken_ids_busy_locked_and_unknown_keys() {
    let mut w = World::new();
    let refused = |w: &World, cmd: Command| w.decide(cmd).expect_err("refused");
    for steps in [&[][..], &[50][..], &[50, 50, 100][..], &[0, 100][..], &[60, 40, 100][..]] {
        let e = refused(&w, start("r", &[workers(8)], &[], steps, 0));
        assert_eq!(e.kind, RejectionKind::Invalid, "{steps:?}: {}", e.message);
    }
    let e = refused(&w, start("bad id!", &[workers(8)], &[], &[100], 0));
    assert_eq!(e.kind, RejectionKind::Invalid);
    let e = refused(&w, start("r", &[("NOPE", Input::Json(json!(1)))], &[], &[100], 0));
    assert_eq!(e.kind, RejectionKind::UnknownKey);
    let e = refused(&w, start("r", &[("JWT_SECRET_KEY", Input::Text("x".repeat(40)))], &[], &[100], 0));
    assert_eq!(e.kind, RejectionKind::Locked);
    let e = refused(&w, start("r", &[("MAX_WORKERS", Input::Json(json!("many")))], &[], &[100], 0));
    assert_eq!(e.kind, RejectionKind::Invalid);
    let e = refused(&w, start("r", &[workers(8), workers(9)], &[], &[100], 0));
    assert!(e.message.contains("named twice"), "{}", e.message);

    w.run(start("r1", &[workers(8)], &[("role", "canary")], &[50, 100], 1000)).expect("started");
    let e = refused(&w, start("r1", &[("LOG_LEVEL", Input::Json(json!("debug")))], &[], &[100], 0));
    assert_eq!(e.kind, RejectionKind::Conflict, "{}", e.message);
    let e = refused(&w, start("r2", &[workers(9)], &[], &[100], 0));
    assert_eq!(e.kind, RejectionKind::Conflict);
    assert!(e.message.contains("already rolling out in rollout r1"), "{}", e.message);
}

#[test]
fn a_secret_is_sealed_under_the_rollouts_own_name() {
    let mut w = World::new();
    let events =
        w.run(start("s1", &[("WEBHOOK_SECRET", Input::Text("hush".into()))], &[], &[100], 0)).expect("started");
    let Event::RolloutStarted(e) = &events[0] else { panic!("{events:?}") };
    let StoredValue::Sealed(text) = &e.changes[0].value else { panic!("sealed: {:?}", e.changes[0]) };
    assert!(text.starts_with("sealed:rollout/s1/"), "{text}");
    let name = cfgledger_events::rollout::secret_name("s1", "mcpgateway:WEBHOOK_SECRET");
    assert_eq!(TestSealer.open(&name, text).ok(), Some(b"\"hush\"".to_vec()));
    assert!(TestSealer.open("mcpgateway:WEBHOOK_SECRET", text).is_err(), "not openable as the main value");
}

#[test]
fn the_bake_holds_unless_by_hand_and_a_transition_made_is_a_no_op() {
    let mut w = World::new();
    w.set("MAX_WORKERS", json!(4));
    w.run(start("r", &[workers(16)], &[("role", "canary")], &[50, 100], 60_000)).expect("started");
    let early = w.decide(advance("r", 0, AT, false)).expect_err("the bake has not ended");
    assert_eq!(early.kind, RejectionKind::State);
    assert!(early.message.contains("bakes stage 0"), "{}", early.message);
    let after_bake = Timestamp(AT.0 + 60_000_000);
    let first = w.run(advance("r", 0, after_bake, false)).expect("the bake ended");
    assert!(matches!(&first[..], [Event::RolloutAdvanced(e)] if e.stage == 1 && e.percent == 50 && !e.manual));
    // A second server's command for the same transition, decided after it: nothing to append.
    assert_eq!(w.decide(advance("r", 0, after_bake, false)).expect("a no-op"), Vec::<Event>::new());
    // By hand, the bake is skipped.
    w.run(advance("r", 1, AT, true)).expect("advanced by hand");
    assert_eq!(w.state.rollouts()["r"].stage, 2);
    assert_eq!(w.plain("MAX_WORKERS"), Some(json!(4)), "nothing merged before the end");

    // From the last stage: the completion and the merge, one batch.
    let done = w.run(advance("r", 2, AT, true)).expect("completed");
    assert!(
        matches!(&done[..], [Event::RolloutCompleted(_), Event::SettingChanged(c)] if c.key == "mcpgateway:MAX_WORKERS"),
        "{done:?}"
    );
    assert_eq!(w.plain("MAX_WORKERS"), Some(json!(16)));
    assert_eq!(w.state.rollouts()["r"].status, RolloutStatus::Completed);
    assert_eq!(w.decide(advance("r", 2, AT, true)).expect("a no-op"), Vec::<Event>::new());
    let rb = Command::RollBackRollout { id: "r".into(), reason: "late".into(), signal: None };
    assert_eq!(w.decide(rb).expect("a no-op"), Vec::<Event>::new(), "a completed rollout is not rolled back");
    // The key is free for a new rollout.
    w.run(start("r-next", &[workers(20)], &[], &[100], 0)).expect("the key is free again");
}

#[test]
fn a_rollback_ends_it_once_and_merges_nothing() {
    let mut w = World::new();
    w.set("MAX_WORKERS", json!(4));
    w.run(start("r", &[workers(16)], &[], &[100], 0)).expect("started");
    let rb = |signal: Option<&str>| Command::RollBackRollout {
        id: "r".into(),
        reason: "the check failed".into(),
        signal: signal.map(str::to_string),
    };
    let events = w.run(rb(Some("check_url http://x answered 500"))).expect("rolled back");
    assert!(
        matches!(&events[..], [Event::RolloutRolledBack(e)] if e.signal.as_deref() == Some("check_url http://x answered 500") && e.stage == 1)
    );
    assert_eq!(w.decide(rb(None)).expect("a no-op"), Vec::<Event>::new());
    assert_eq!(w.decide(advance("r", 1, AT, true)).expect("a no-op"), Vec::<Event>::new());
    assert_eq!(w.plain("MAX_WORKERS"), Some(json!(4)));
    let missing = w.decide(Command::RollBackRollout { id: "nope".into(), reason: "x".into(), signal: None });
    assert_eq!(missing.expect_err("no such rollout").kind, RejectionKind::Missing);
}

#[test]
fn who_a_rollout_serves_grows_with_its_stages() {
    let mut w = World::new();
    w.run(start("r", &[workers(16)], &[("role", "canary")], &[30, 100], 0)).expect("started");
    let canary: BTreeMap<String, String> = [("role".to_string(), "canary".to_string())].into();
    let plain = BTreeMap::new();
    let ids: Vec<String> = (0..200).map(|i| format!("i{i}")).collect();
    let served = |w: &World, labels: &BTreeMap<String, String>| {
        ids.iter().filter(|id| w.state.rollouts()["r"].serves(Some(id), labels)).count()
    };
    assert_eq!(served(&w, &canary), 200, "stage 0: every canary");
    assert_eq!(served(&w, &plain), 0, "stage 0: nobody else");
    w.run(advance("r", 0, AT, false)).expect("bake 0 ms");
    let at_30 = ids.iter().filter(|id| bucket("r", id) < 30).count();
    assert_eq!(served(&w, &plain), at_30, "stage 1: the instances whose bucket is under 30");
    assert!((30..=90).contains(&at_30), "about 30 % of 200: {at_30}");
    assert!(!w.state.rollouts()["r"].serves(None, &plain), "an instance without an id only by its labels");
    w.run(advance("r", 1, AT, false)).expect("bake 0 ms");
    assert_eq!(served(&w, &plain), 200, "stage 2: everyone");
}

#[test]
fn a_checkpoint_keeps_the_rollouts() {
    let mut w = World::new();
    w.run(start("r", &[workers(16)], &[("zone", "a")], &[50, 100], 10)).expect("started");
    w.run(advance("r", 0, Timestamp(AT.0 + 10_000), false)).expect("advanced");
    let bytes = cfgledger_projections::snapshot::encode(&w.state);
    let back = cfgledger_projections::snapshot::decode(&bytes).expect("decodes");
    assert_eq!(back, w.state);
    assert_eq!(back.rollouts()["r"].stage, 1);
}
