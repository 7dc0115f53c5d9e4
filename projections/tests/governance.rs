//! `decide` and the fold for change requests, on the real settings projection: a request's changes decided
//! in order on a fork of the state (a server created with the tool it links), the policy checked over
//! direct writes, a request applied once and only by its due command, a scheduled request suspended when
//! its base moved and reported late, and the bypass allowed only to the users the policy lists.

mod common;

use cfgledger_events::decide::ProposedChange;
use cfgledger_events::governance::{Policy, PolicyRule, RequestStatus};
use cfgledger_events::{Command, Event, Input, RejectionKind, ResourceKind, Timestamp};
use common::World;
use serde_json::{json, Map, Value};

const T0: Timestamp = Timestamp(1_800_000_000_000_000);

fn at(secs: i64) -> Timestamp {
    Timestamp(T0.0 + secs * 1_000_000)
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn policy(rules: &[(&str, u32)], bypass: &[&str]) -> Policy {
    Policy {
        rules: rules.iter().map(|(s, n)| PolicyRule { scope: s.to_string(), approvals: *n }).collect(),
        bypass: bypass.iter().map(|s| s.to_string()).collect(),
        policy_approvals: None,
    }
}

fn propose(author: &str, changes: Vec<ProposedChange>, apply_at: Option<Timestamp>) -> Command {
    Command::ProposeRequest { author: author.into(), reason: "why".into(), changes, apply_at, now: T0 }
}

fn set(key: &str, value: Value) -> ProposedChange {
    ProposedChange::Set { key: key.into(), value: Input::Json(value) }
}

fn approve(id: u64, who: &str) -> Command {
    Command::ApproveRequest { id, approver: who.into(), comment: None, now: T0 }
}

/// A store with admins alice, bob and carol, and `p` as its policy (applied at once: the empty policy asks
/// for no approval).
fn world(p: Policy) -> World {
    let mut w = World::new();
    for name in ["alice", "bob", "carol"] {
        w.run(Command::AddUser {
            name: name.into(),
            role: "platform_admin".into(),
            password_hash: "$argon2id$x".into(),
        })
        .expect("a user");
    }
    let events = w.run(propose("alice", vec![ProposedChange::Policy(p)], None)).expect("the policy");
    assert!(events.iter().any(|e| matches!(e, Event::PolicyChanged(_))), "applied at once: {events:?}");
    w
}

#[test]
fn a_request_decides_its_changes_in_order_so_a_server_can_link_the_tool_it_creates() {
    let mut w = world(policy(&[("registry", 1)], &[]));
    let tool = object(json!({"name": "search", "url": "https://tools.example/search"}));
    let server = object(json!({"name": "srv", "associated_tools": ["search"]}));
    // Directly, each entity needs an approval.
    let refused =
        w.decide(Command::CreateResource { kind: ResourceKind::Tools, fields: tool.clone() }).expect_err("governed");
    assert_eq!(refused.kind, RejectionKind::ApprovalRequired);
    // Alone, the server's link to a tool that does not exist is refused at proposal.
    let alone = vec![ProposedChange::Create { kind: ResourceKind::Servers, fields: server.clone() }];
    assert!(w.decide(propose("alice", alone, None)).is_err(), "a link to a missing tool must be refused");
    let changes = vec![
        ProposedChange::Create { kind: ResourceKind::Tools, fields: tool },
        ProposedChange::Create { kind: ResourceKind::Servers, fields: server },
    ];
    w.run(propose("alice", changes, None)).expect("the server may link the tool created before it");
    assert!(w.state.resource_entry(ResourceKind::Tools, "search").is_none(), "nothing applies before approval");
    let events = w.run(approve(2, "bob")).expect("bob approves");
    let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
    assert_eq!(kinds, ["ChangeRequestApproved", "ChangeRequestApplied", "ResourceCreated", "ResourceCreated"]);
    assert!(w.state.resource_entry(ResourceKind::Servers, "srv").is_some());
    assert_eq!(w.state.governance().request(2).map(|r| r.status), Some(RequestStatus::Applied));
}

#[test]
fn the_most_specific_rule_governs_direct_writes_and_a_request_needs_its_strictest_change() {
    let mut w = world(policy(&[("mcpgateway", 1), ("mcpgateway/logging", 0), ("mcpgateway/limits", 2)], &[]));
    w.run(Command::Set { key: "LOG_LEVEL".into(), value: Input::Json(json!("DEBUG")) }).expect("logging is free");
    for (key, value) in [("MAX_WORKERS", json!(3)), ("MAX_TOOL_TIMEOUT", json!("1m"))] {
        let refused = w.decide(Command::Set { key: key.into(), value: Input::Json(value) }).expect_err(key);
        assert_eq!(refused.kind, RejectionKind::ApprovalRequired, "{key}");
    }
    w.run(propose("alice", vec![set("MAX_WORKERS", json!(3)), set("MAX_TOOL_TIMEOUT", json!("1m"))], None))
        .expect("proposed");
    let r = w.state.governance().request(2).expect("request 2").clone();
    assert_eq!((r.required_approvals, r.status), (2, RequestStatus::Open));
    // The same key twice in one request is refused; an empty one too.
    let twice = w.decide(propose("alice", vec![set("MAX_WORKERS", json!(3)), set("MAX_WORKERS", json!(4))], None));
    assert_eq!(twice.expect_err("twice").kind, RejectionKind::Invalid);
    let nothing = w.decide(propose("alice", vec![set("LOG_LEVEL", json!("DEBUG"))], None));
    assert_eq!(nothing.expect_err("already so").kind, RejectionKind::State);
}

#[test]
fn a_scheduled_request_applies_once_at_its_time_is_late_after_an_outage_and_suspends_when_its_base_moved() {
    let mut w = world(policy(&[("mcpgateway", 1)], &["carol"]));
    w.run(propose("alice", vec![set("MAX_WORKERS", json!(5))], Some(at(60)))).expect("proposed");
    assert_eq!(
        w.decide(propose("alice", vec![set("MAX_WORKERS", json!(6))], Some(T0))).expect_err("past").kind,
        RejectionKind::Invalid
    );
    w.run(approve(2, "bob")).expect("approved");
    assert_eq!(w.state.governance().request(2).map(|r| r.status), Some(RequestStatus::Scheduled));
    let due = |now, late_after_secs| Command::ApplyDueRequest { id: 2, now, late_after_secs };
    assert!(w.run(due(at(59), 60)).expect("not yet").is_empty(), "nothing before its time");
    let events = w.run(due(at(200), 60)).expect("applied");
    match &events[0] {
        Event::ChangeRequestApplied(e) => {
            assert_eq!((e.late_secs, e.approvers.clone()), (Some(140), vec!["bob".to_string()]))
        }
        other => panic!("not applied: {other:?}"),
    }
    assert_eq!(w.plain("MAX_WORKERS"), Some(json!(5)));
    assert!(w.run(due(at(201), 60)).expect("a second due command").is_empty(), "applied once");

    // A second scheduled request, whose key the bypass changes before its time: suspended, not applied.
    w.run(propose("alice", vec![set("MAX_WORKERS", json!(8))], Some(at(300)))).expect("proposed");
    w.run(approve(3, "bob")).expect("approved");
    let bypass = |by: &str| Command::Bypass {
        by: by.into(),
        then: Box::new(Command::Set { key: "MAX_WORKERS".into(), value: Input::Json(json!(7)) }),
    };
    assert_eq!(w.decide(bypass("alice")).expect_err("not listed").kind, RejectionKind::Forbidden);
    let events = w.run(bypass("carol")).expect("carol may");
    match &events[0] {
        Event::EmergencyBypassUsed(e) => assert_eq!(e.bypassed[0].subject, "mcpgateway:MAX_WORKERS"),
        other => panic!("no bypass event first: {other:?}"),
    }
    let events = w.run(Command::ApplyDueRequest { id: 3, now: at(301), late_after_secs: 60 }).expect("due");
    assert!(
        matches!(&events[..], [Event::ChangeRequestSuspended(e)] if e.conflicts[0].subject == "mcpgateway:MAX_WORKERS")
    );
    assert_eq!(w.plain("MAX_WORKERS"), Some(json!(7)), "the suspended value never applied");
    assert!(w.run(Command::ApplyDueRequest { id: 3, now: at(302), late_after_secs: 60 }).expect("again").is_empty());
}

#[test]
fn edits_withdraw_approvals_and_only_authors_edit_or_withdraw() {
    let mut w = world(policy(&[("mcpgateway", 2)], &[]));
    w.run(propose("alice", vec![set("MAX_WORKERS", json!(5))], None)).expect("proposed");
    assert_eq!(w.decide(approve(2, "alice")).expect_err("own").kind, RejectionKind::Forbidden);
    w.run(approve(2, "bob")).expect("bob");
    assert_eq!(w.decide(approve(2, "bob")).expect_err("twice").kind, RejectionKind::Conflict);
    assert_eq!(w.decide(approve(2, "mallory")).expect_err("not a user").kind, RejectionKind::Forbidden);
    let edit = |by: &str| Command::EditRequest {
        id: 2,
        by: by.into(),
        changes: vec![set("MAX_WORKERS", json!(6))],
        apply_at: None,
        now: T0,
    };
    assert_eq!(w.decide(edit("bob")).expect_err("not the author").kind, RejectionKind::Forbidden);
    w.run(edit("alice")).expect("edited");
    let r = w.state.governance().request(2).expect("request");
    assert!(r.approvals.is_empty() && r.revision == 1, "approvals withdrawn: {r:?}");
    let withdraw = |by: &str| Command::WithdrawRequest { id: 2, by: by.into(), comment: None };
    assert_eq!(w.decide(withdraw("bob")).expect_err("not the author").kind, RejectionKind::Forbidden);
    w.run(withdraw("alice")).expect("withdrawn");
    assert_eq!(w.decide(approve(2, "bob")).expect_err("closed").kind, RejectionKind::State);
}

#[test]
fn a_rollout_of_a_governed_key_is_a_change_of_it_and_needs_its_approvals_or_the_bypass() {
    use cfgledger_events::decide::StartRollout;
    use cfgledger_events::rollout::RolloutCheck;
    let mut w = world(policy(&[("mcpgateway/performance", 1), ("mcpgateway/logging", 0)], &["carol"]));
    let start = |id: &str, key: &str, value: Value| {
        Command::StartRollout(StartRollout {
            id: id.into(),
            namespace: "mcpgateway".into(),
            changes: vec![(key.into(), Input::Json(value))],
            selector: [("zone".to_string(), "a".to_string())].into_iter().collect(),
            steps: vec![50, 100],
            bake_ms: 1000,
            check: RolloutCheck { url: None, timeout_ms: 2000, instance_reports: false },
        })
    };
    let refused = w.decide(start("r1", "MAX_WORKERS", json!(16))).expect_err("a governed key");
    assert_eq!(refused.kind, RejectionKind::ApprovalRequired, "{}", refused.message);
    w.run(start("r2", "LOG_LEVEL", json!("DEBUG"))).expect("an ungoverned key rolls out directly");
    let events = w
        .run(Command::Bypass { by: "carol".into(), then: Box::new(start("r3", "MAX_WORKERS", json!(16))) })
        .expect("carol may bypass");
    assert!(matches!(&events[0], Event::EmergencyBypassUsed(e) if e.bypassed[0].subject == "mcpgateway:MAX_WORKERS"));
}

#[test]
fn the_policy_in_force_at_apply_counts_a_passed_apply_time_is_refused_and_a_stale_whole_update_must_be_based_again() {
    let mut w = world(policy(&[("mcpgateway", 1), ("registry", 1)], &["carol"]));
    // Scheduled with one approval under a policy that asks one...
    w.run(propose("alice", vec![set("MAX_WORKERS", json!(5))], Some(at(60)))).expect("proposed");
    assert_eq!(
        w.decide(Command::ApproveRequest { id: 2, approver: "bob".into(), comment: None, now: at(61) })
            .expect_err("its time has passed")
            .kind,
        RejectionKind::Conflict
    );
    w.run(approve(2, "bob")).expect("approved in time");
    // ...then the policy asks two: at its time it is suspended, saying why, not applied on one approval.
    w.run(propose(
        "alice",
        vec![ProposedChange::Policy(policy(
            &[("mcpgateway", 2), ("mcpgateway/logging", 0), ("registry", 1)],
            &["carol"],
        ))],
        None,
    ))
    .expect("proposed");
    w.run(approve(3, "carol")).expect("the stricter policy applies");
    let events = w.run(Command::ApplyDueRequest { id: 2, now: at(61), late_after_secs: 60 }).expect("due");
    assert!(matches!(&events[..], [Event::ChangeRequestSuspended(_)]), "{events:?}");
    let r = w.state.governance().request(2).expect("request 2");
    assert!(r.suspended_reason.as_deref().is_some_and(|m| m.contains("now asks 2")), "{r:?}");
    assert_eq!(w.plain("MAX_WORKERS"), None);

    // A request that replaces a whole entity which changed since its base is refused, not applied over it.
    let tool = object(json!({"name": "search", "url": "https://tools.example/search"}));
    let bypass = |then: Command| Command::Bypass { by: "carol".into(), then: Box::new(then) };
    w.run(bypass(Command::CreateResource { kind: ResourceKind::Tools, fields: tool })).expect("created");
    let patch = ProposedChange::Patch {
        kind: ResourceKind::Tools,
        name: "search".into(),
        patch: object(json!({"description": "finds things"})),
    };
    w.run(propose("alice", vec![patch], None)).expect("proposed");
    let id = w.state.governance().next_id() - 1;
    let other = Command::PatchResource {
        kind: ResourceKind::Tools,
        name: "search".into(),
        patch: object(json!({"url": "https://tools.example/v2/search"})),
    };
    w.run(bypass(other)).expect("changed meanwhile");
    let refused = w.decide(approve(id, "bob")).expect_err("a stale whole update");
    assert_eq!(refused.kind, RejectionKind::Conflict);
    assert!(refused.message.contains("tools/search"), "{}", refused.message);
    assert_eq!(
        w.state.resource_entry(ResourceKind::Tools, "search").and_then(|e| e.fields.get("url").cloned()),
        Some(json!("https://tools.example/v2/search")),
        "the change made meanwhile stands"
    );

    // The bypass of something the policy does not govern records no bypass.
    let events = w.run(bypass(Command::Set { key: "LOG_LEVEL".into(), value: Input::Json(json!("DEBUG")) }));
    let events = events.expect("carol sets an ungoverned key");
    assert!(!events.iter().any(|e| matches!(e, Event::EmergencyBypassUsed(_))), "{events:?}");
}
