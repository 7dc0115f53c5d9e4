//! The master key's rotation at issue 18's scale: a SQLite store (a temp dir on the real file system) holding
//! 10,000 secret-bearing entities (gateways with basic, OAuth and query-parameter credentials, tools with a
//! bearer token and a secret header: 15,000 sealed values in all) is reopened with a new secret and its old
//! one as previous, and `usecase::keys::rotate` records the new key, wraps every data key again under it and
//! seals again what the master key seals directly, in batches of 500 (target < 10 s). In the same run, as references: importing the same 10,000 entities into a
//! fresh store (one batch that seals each credential once), the same import without credentials (no crypto),
//! and `key verify` over the rotated store. The rotation is checked to leave nothing under the old key.
//! `cargo bench --bench key_rotation` runs it at full size; `cargo test --benches` at 200 entities.

mod common;
use common::{actor, full_run};

use cfgledger::store::StoreUrl;
use cfgledger::usecase::keys;
use cfgledger::usecase::registry::export;
use cfgledger::usecase::registry::import as registry_import;
use cfgledger::{EnvFileChoice, Ledger, OpenOptions, WriteContext};
use cfgledger_events::registry_import::ConflictStrategy;
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::Cause;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const OLD_SECRET: &str = "bench-old-master-secret-0123456789abcdef";
const NEW_SECRET: &str = "bench-new-master-secret-fedcba9876543210";

fn open(path: &Path, env: &[(&str, &str)]) -> Ledger {
    let mut opts = OpenOptions::new(StoreUrl::Sqlite(path.to_path_buf()), suite_catalog());
    opts.env_file = EnvFileChoice::None;
    for (k, v) in env {
        opts.process_env.insert(k.to_string(), v.to_string());
    }
    Ledger::open(opts).expect("the store opens").0
}

/// `entities` entities, half gateways (a third each basic, OAuth and query-parameter credentials) and half
/// tools (a bearer token and a secret header), or the same entities without credentials.
fn document(entities: usize, credentials: bool) -> Value {
    let mut gateways = Vec::new();
    let mut tools = Vec::new();
    for i in 0..entities / 2 {
        let mut g = json!({"name": format!("gw-{i}"), "url": format!("http://127.0.0.1:9/g{i}")});
        let mut t = json!({"name": format!("tool-{i}"), "url": format!("http://127.0.0.1:9/t{i}"),
            "integration_type": "REST", "request_type": "GET", "headers": {"X-Tenant": "acme"}});
        if credentials {
            let extra = match i % 3 {
                0 => json!({"auth_type": "basic", "auth_username": "svc", "auth_password": format!("pw-{i}")}),
                1 => json!({"auth_type": "oauth", "oauth_config": {"grant_type": "client_credentials",
                    "client_id": "c", "client_secret": format!("oauth-{i}"), "token_url": "http://127.0.0.1:9/t"}}),
                _ => json!({"auth_type": "query_param", "auth_query_param_key": "k",
                    "auth_query_param_value": format!("q-{i}")}),
            };
            g.as_object_mut().expect("an object").extend(extra.as_object().expect("an object").clone());
            t["auth_type"] = json!("bearer");
            t["auth_token"] = json!(format!("bearer-{i}"));
            t["headers"]["X-Api-Key"] = json!(format!("hdr-{i}"));
        }
        gateways.push(g);
        tools.push(t);
    }
    let entities = json!({"gateways": gateways, "tools": tools});
    json!({"digest": export::digest(&entities, &Value::Null), "entities": entities})
}

fn ctx(cause: Cause) -> WriteContext {
    WriteContext { actor: actor(), cause, reason: None, bypass: false }
}

/// Imports `doc` into the store at `path` (one batch), timing the parse and the apply.
fn import(path: &Path, doc: &Value) -> Duration {
    let ledger = open(path, &[("CFGLEDGER_AUTH_ENCRYPTION_SECRET", OLD_SECRET)]);
    let options = registry_import::ImportOptions {
        with_settings: false,
        allow_edited: false,
        names: &registry_import::CLI_OPTIONS,
    };
    let t0 = Instant::now();
    let parsed = registry_import::parse(&ledger, doc, ConflictStrategy::Update, None, None, &options)
        .expect("the document parses");
    let cause = Cause::Import { digest: parsed.digest.clone(), via: "import".into() };
    let outcome = ledger.execute(registry_import::command(parsed), ctx(cause)).expect("the import applies");
    let took = t0.elapsed();
    assert!(outcome.changed(), "the import appends a batch");
    took
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn main() {
    let entities = if full_run() { 10_000 } else { 200 };
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("a temp dir");

    // References: the same entities imported into fresh stores, with and without credentials.
    let plain = import(&dir.path().join("plain.db"), &document(entities, false));
    let store = dir.path().join("secrets.db");
    let sealed = import(&store, &document(entities, true));

    // The rotation: the store reopened with the new secret and the old one as previous.
    let ledger = open(
        &store,
        &[("CFGLEDGER_AUTH_ENCRYPTION_SECRET", NEW_SECRET), ("CFGLEDGER_AUTH_ENCRYPTION_PREVIOUS_SECRETS", OLD_SECRET)],
    );
    let before = keys::status(&ledger).expect("the key status");
    let opts = keys::RotateOptions { to: None, batch: keys::DEFAULT_BATCH };
    let mut batches = 0;
    let t0 = Instant::now();
    let report = keys::rotate(&ledger, &opts, ctx(Cause::Cli { command: "key rotate".into() }), &mut |_| batches += 1)
        .expect("the rotation completes");
    let rotation = t0.elapsed();
    // The values sealed under data keys move with their keys' re-wrap; what the master key seals directly is
    // sealed again. `key verify` below opens every value and checks every wrapping.
    assert!(report.rotated && report.rewrapped == before.data_keys && report.rewrapped > 0, "{report:?} of {before:?}");
    let t1 = Instant::now();
    let after = keys::verify(&ledger).expect("nothing is left under the old key");
    let verify = t1.elapsed();
    assert_eq!(after.behind, 0);

    println!(
        "key_rotation: {entities} entities, {} sealed values under {} data keys, batches of {}",
        before.values,
        before.data_keys,
        keys::DEFAULT_BATCH
    );
    println!(
        "  rotate (record the key, re-wrap {} data keys, seal {} values again; {batches} batches): {}",
        report.rewrapped,
        report.resealed,
        secs(rotation)
    );
    println!("  reference, import of the same entities with credentials (seals each once): {}", secs(sealed));
    println!("  reference, import of the same entities without credentials (no crypto): {}", secs(plain));
    println!("  key verify over the rotated store (opens every value): {}", secs(verify));
    println!(
        "  ratio rotate / import with credentials: {:.2}; target < 10 s: {}",
        rotation.as_secs_f64() / sealed.as_secs_f64(),
        if rotation < Duration::from_secs(10) { "met" } else { "MISSED" }
    );
}
