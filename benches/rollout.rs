//! What a rollout costs, in-process on the built-in catalog (about 860 keys), measured in the same run
//! against its reference:
//!
//! - a render of the default namespace (every key, env) for an instance that 20 active rollouts serve,
//!   against the same render with no rollout (what every follower's re-render costs);
//! - a rollout transition (`AdvanceRollout` by hand, decided and appended on the memory store), against a
//!   plain `Set` of one key (the cheapest write).
//!
//! Run: `cargo bench --bench rollout`. Prints one table; `cargo test --benches` runs every loop briefly.

mod common;

use cfgledger::store::StoreUrl;
use cfgledger::usecase::render::{self, RenderFormat, RenderRequest};
use cfgledger::{EnvFileChoice, Ledger, OpenOptions, WriteContext};
use cfgledger_events::builtin::builtin;
use cfgledger_events::catalog::ValueType;
use cfgledger_events::decide::StartRollout;
use cfgledger_events::rollout::RolloutCheck;
use cfgledger_events::{Cause, Command, Input};
use std::collections::BTreeMap;
use std::hint::black_box;

const SECRET: &str = "rollout-bench-secret-0123456789abcdef";
const ROLLOUTS: usize = 20;
/// Stages of each rollout: 10 steps, then the completion.
const STEPS: [u8; 10] = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];

fn ctx() -> WriteContext {
    WriteContext { actor: common::actor(), cause: Cause::Cli { command: "bench".into() }, reason: None, bypass: false }
}

fn open() -> Ledger {
    let mut opts = OpenOptions::new(StoreUrl::Memory, builtin());
    opts.env_file = EnvFileChoice::None;
    opts.process_env.insert("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), SECRET.into());
    Ledger::open(opts).expect("the bench store opens").0
}

/// p50 and p99 of `n` runs of `f`, in microseconds.
fn timed(n: usize, f: impl FnMut()) -> (f64, f64) {
    let samples = common::sorted_samples(n, f);
    let at = |q: f64| {
        let i = ((samples.len() - 1) as f64 * q).round() as usize;
        samples[i].as_secs_f64() * 1e6
    };
    (at(0.5), at(0.99))
}

fn main() {
    let n = if common::full_run() { 2_000 } else { 20 };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let ledger = open();
    let canary: BTreeMap<String, String> = [("role".to_string(), "canary".to_string())].into();
    let req = RenderRequest {
        include_defaults: true,
        format: RenderFormat::Env,
        instance: Some("web-1".into()),
        labels: canary.clone(),
        ..RenderRequest::default()
    };
    let render_once = || {
        black_box(rt.block_on(render::render(&ledger, &req, ctx())).expect("a render"));
    };
    let plain = timed(n, render_once);

    // Integer keys of the default namespace that take their default: each rollout changes one.
    let keys: Vec<(String, serde_json::Value)> = ledger
        .catalog()
        .specs()
        .iter()
        .filter(|s| s.namespace == "mcpgateway" && !s.locked && !s.sensitive && matches!(s.ty, ValueType::Int { .. }))
        .filter_map(|s| s.default.clone().map(|d| (s.id.clone(), d)))
        .take(ROLLOUTS)
        .collect();
    assert_eq!(keys.len(), ROLLOUTS, "enough integer keys in the built-in catalog");
    for (i, (key, value)) in keys.iter().enumerate() {
        let cmd = Command::StartRollout(StartRollout {
            id: format!("bench-{i}"),
            namespace: "mcpgateway".into(),
            changes: vec![(key.clone(), Input::Json(value.clone()))],
            selector: canary.clone(),
            steps: STEPS.to_vec(),
            bake_ms: 3_600_000,
            check: RolloutCheck { url: None, timeout_ms: 2000, instance_reports: false },
        });
        ledger.execute(cmd, ctx()).expect("a rollout starts");
    }
    let with_rollouts = timed(n, render_once);

    // Every transition of every rollout, by hand, against as many plain sets.
    let mut transitions = Vec::new();
    for stage in 0..=u32::try_from(STEPS.len()).expect("few steps") {
        for i in 0..ROLLOUTS {
            transitions.push((format!("bench-{i}"), stage));
        }
    }
    let count = transitions.len();
    let mut next = transitions.into_iter();
    let advance = timed(count, || {
        let (id, from_stage) = next.next().expect("a transition left");
        let cmd = Command::AdvanceRollout { id, from_stage, now: ledger.now(), manual: true };
        assert!(ledger.execute(cmd, ctx()).expect("advanced").changed());
    });
    let mut value = 0u64;
    let set = timed(count, || {
        value += 1;
        let cmd = Command::Set { key: "mcpgateway:LOG_LEVEL".into(), value: Input::Json(level(value)) };
        black_box(ledger.execute(cmd, ctx()).expect("set"));
    });
    let us = |(p50, p99): (f64, f64)| format!("p50 {p50:.1} µs, p99 {p99:.1} µs");
    println!("| measured ({n} renders, {count} writes each) | this | reference | ratio (p50) |");
    println!("|---|---|---|---|");
    println!(
        "| render env, every key, instance served by {ROLLOUTS} rollouts / by none | {} | {} | {:.2}× |",
        us(with_rollouts),
        us(plain),
        with_rollouts.0 / plain.0
    );
    println!(
        "| a rollout transition (advance by hand) / a plain set | {} | {} | {:.2}× |",
        us(advance),
        us(set),
        advance.0 / set.0
    );
}

fn level(i: u64) -> serde_json::Value {
    serde_json::Value::String(["DEBUG", "INFO", "WARNING", "ERROR"][(i % 4) as usize].into())
}
