//! Fold throughput: `SettingsState::apply` over 100,000 pre-decoded `SettingChanged` envelopes spread over
//! the catalog's keys (target ≥ 1,000,000 events/s). Beside it, the other per-event costs of a replay,
//! measured on the same events so that the rebuild bench can be read as their sum: JSON decoding of the
//! stored envelope, the blake3 link, `verify_link` (link + decode + column checks) followed by `apply`, and
//! `build_batch` (encode + hash) on the write side.

mod common;
use common::{actor, full_run};

use cfgledger_events::event::{SettingChanged, StoredValue};
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{build_batch, verify_link, Batch, Cause, Envelope, Event, Hash, Head, Record, Timestamp};
use cfgledger_projections::SettingsState;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

/// `n` single-event batches of `SettingChanged`, cycling over every catalog key, chained from seq 1.
fn changes(n: usize) -> Vec<(Envelope, Record)> {
    let keys: Vec<String> = suite_catalog().specs().iter().map(|s| s.key.clone()).collect();
    assert!(keys.len() >= 30, "the catalog has about 30 keys");
    let actor = actor();
    let start = Timestamp::from_micros(1_790_000_000_000_000);
    let mut head = Head::EMPTY;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let key = keys[i % keys.len()].clone();
        let value = StoredValue::Plain(serde_json::Value::from(i as i64));
        let previous = (i >= keys.len()).then(|| StoredValue::Plain(serde_json::Value::from((i - keys.len()) as i64)));
        let event = Event::SettingChanged(SettingChanged { key: key.clone(), value, previous });
        let batch = Batch {
            id: format!("{i:032x}"),
            cause: Cause::Api { method: "PUT".into(), path: format!("/admin/config/{key}") },
            reason: None,
        };
        let built =
            build_batch(head, Timestamp::from_micros(start.as_micros() + i as i64), &actor, &batch, vec![event]);
        let (_, rec) = built.last().expect("one record");
        head = Head { seq: rec.seq, hash: rec.hash };
        out.extend(built);
    }
    out
}

fn fold_benches(c: &mut Criterion) {
    let n = if full_run() { 100_000 } else { 1_000 };
    let built = changes(n);
    let envelopes: Vec<Envelope> = built.iter().map(|(e, _)| e.clone()).collect();
    let records: Vec<Record> = built.into_iter().map(|(_, r)| r).collect();
    let mean_bytes = records.iter().map(|r| r.envelope.len()).sum::<usize>() / records.len();
    println!("fold: {n} SettingChanged events, mean envelope {mean_bytes} bytes");

    let mut group = c.benchmark_group("fold");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));

    group.bench_function("apply", |b| {
        b.iter(|| {
            let mut state = SettingsState::new();
            for env in &envelopes {
                state.apply(env);
            }
            state
        })
    });

    group.bench_function("decode", |b| {
        b.iter(|| {
            for rec in &records {
                black_box(Envelope::decode(&rec.envelope).expect("decodes"));
            }
        })
    });

    group.bench_function("blake3_link", |b| {
        b.iter(|| {
            for rec in &records {
                black_box(Hash::link(&rec.prev_hash, &rec.envelope));
            }
        })
    });

    group.bench_function("verify_link+apply", |b| {
        b.iter(|| {
            let mut state = SettingsState::new();
            let mut head = Head::EMPTY;
            for rec in &records {
                let env = verify_link(&head, rec).expect("the chain verifies");
                state.apply(&env);
                head = Head { seq: rec.seq, hash: rec.hash };
            }
            state
        })
    });

    let actor = actor();
    let batch =
        Batch { id: "0".repeat(32), cause: Cause::Api { method: "PUT".into(), path: "/".into() }, reason: None };
    group.bench_function("build_batch", |b| {
        b.iter_batched(
            || envelopes.iter().map(|e| e.event.clone()).collect::<Vec<Event>>(),
            |events| build_batch(Head::EMPTY, Timestamp::from_micros(0), &actor, &batch, events),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, fold_benches);
criterion_main!(benches);
