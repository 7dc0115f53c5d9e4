//! Several `cfgledger` processes on one SQLite file at once: concurrent writers must lose no acknowledged
//! change and leave a gapless, verifiable chain, and processes racing to create a brand-new store must end
//! with exactly one genesis event.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use support::{kinds, seqs, Run, Store};

/// A finished `config set`: what it tried and how it ended.
struct Attempt {
    key: String,
    value: String,
    run: Run,
}

fn wait(child: Child) -> Run {
    let out = child.wait_with_output().expect("wait for cfgledger");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Spawns `config set KEY VALUE` without waiting for it.
fn spawn_set(s: &Store, key: &str, value: &str, secret: Option<&str>) -> Child {
    let mut cmd = s.cmd();
    if let Some(secret) = secret {
        cmd.env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", secret);
    }
    cmd.args(["config", "set", key, value])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cfgledger")
}

/// The canonical value each `SettingChanged` of the log wrote, per key, in log order.
fn changes_by_key(log: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in log.iter().filter(|e| e["kind"] == "SettingChanged") {
        // The log holds the qualified key; people name the default namespace's keys bare.
        let key = cfgledger_events::namespace::display(e["payload"]["key"].as_str().expect("a key")).to_string();
        let value = match &e["payload"]["value"]["plain"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.entry(key).or_default().push(value);
    }
    out
}

/// A key and how the i-th change writes it.
type Writer = (&'static str, fn(u32) -> String);

/// A failure must be a clean one: exit 1 with an `error:` line, never a crash or a usage error.
fn assert_clean_failure(a: &Attempt) {
    assert_eq!(a.run.code, Some(1), "{}={} ended badly: {:?}", a.key, a.value, a.run);
    assert!(a.run.stderr.lines().any(|l| l.starts_with("error: ")), "{}={}: {:?}", a.key, a.value, a.run);
}

/// The log holds seqs 1..=N without a gap, and `verify` agrees.
fn assert_gapless_and_verified(s: &Store, log: &[Value]) {
    let n = u64::try_from(log.len()).expect("a log length fits u64");
    assert_eq!(seqs(log), (1..=n).collect::<Vec<_>>());
    for pair in log.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "seq {}", pair[1]["seq"]);
    }
    let verified = s.ok(&["verify"]).stdout;
    assert!(verified.starts_with(&format!("ok: {n} events verified; head {n}:")), "{verified}");
}

#[test]
fn concurrent_writers_lose_nothing_and_leave_a_gapless_chain() {
    const PER_WRITER: u32 = 25;
    let s = Store::with_env("LOG_LEVEL=warn\n");
    s.ok(&["config", "list"]);
    // Each writer owns a key and walks it through distinct values, one process per change.
    let writers: [Writer; 4] = [
        ("MAX_WORKERS", |i| (i + 1).to_string()),
        ("TOOL_RATE_LIMIT", |i| (1000 + i).to_string()),
        ("CACHE_TTL", |i| format!("{}s", i + 1)),
        ("cfgledger:REQUEST_SIZE_LIMIT", |i| (2048 + i).to_string()),
    ];
    let attempts: Vec<Attempt> = std::thread::scope(|scope| {
        let handles: Vec<_> = writers
            .iter()
            .map(|&(key, value_of)| {
                let s = &s;
                scope.spawn(move || {
                    (0..PER_WRITER)
                        .map(|i| {
                            let value = value_of(i);
                            let run = wait(spawn_set(s, key, &value, None));
                            Attempt { key: key.to_string(), value, run }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a writer thread")).collect()
    });

    let failed: Vec<&Attempt> = attempts.iter().filter(|a| a.run.code != Some(0)).collect();
    failed.iter().for_each(|a| assert_clean_failure(a));
    // The store is created and its file in WAL mode before the writers start, so nothing excuses a failure:
    // lock waits and head conflicts must be absorbed by the busy timeout and the writer's retries.
    assert!(
        failed.is_empty(),
        "{} of {} writes failed: {:?}",
        failed.len(),
        attempts.len(),
        failed.iter().map(|a| a.run.stderr.trim()).collect::<Vec<_>>()
    );

    let log = s.log();
    assert_gapless_and_verified(&s, &log);
    assert_eq!(kinds(&log)[..2], ["StoreCreated", "EnvSeeded"]);
    assert_eq!(log.len(), 2 + attempts.len(), "one event per acknowledged change, nothing else");
    let changes = changes_by_key(&log);
    for (key, _) in writers {
        let acknowledged: Vec<String> =
            attempts.iter().filter(|a| a.key == key && a.run.code == Some(0)).map(|a| a.value.clone()).collect();
        assert_eq!(changes.get(key), Some(&acknowledged), "{key}: every acknowledged change, in the order made");
    }
    for a in &attempts {
        assert!(a.run.stdout.starts_with(&format!("{} = {} (seq ", a.key, a.value)), "{:?}", a.run);
    }
    let batches: std::collections::BTreeSet<&str> = log.iter().filter_map(|e| e["batch"]["id"].as_str()).collect();
    assert_eq!(batches.len(), 1 + attempts.len(), "each command is its own batch");
    let last = |key: &str| s.get_json(key)["value"].clone();
    assert_eq!(last("MAX_WORKERS"), serde_json::json!(PER_WRITER));
    assert_eq!(last("CACHE_TTL"), serde_json::json!(format!("{PER_WRITER}s")));
}

/// Starts `n` processes on a store that does not exist yet and checks what they leave behind.
fn race_to_create(n: u32, secret: Option<&str>) -> Vec<Attempt> {
    let s = Store::with_env("LOG_LEVEL=warn\n");
    assert!(!s.db_path().exists());
    let children: Vec<(String, Child)> =
        (1..=n).map(|i| (i.to_string(), spawn_set(&s, "MAX_WORKERS", &i.to_string(), secret))).collect();
    let attempts: Vec<Attempt> = children
        .into_iter()
        .map(|(value, child)| Attempt { key: "MAX_WORKERS".into(), value, run: wait(child) })
        .collect();
    // Losing the race is not a failure: the loser opens the winner's store and makes its change there.
    let failed: Vec<&Attempt> = attempts.iter().filter(|a| a.run.code != Some(0)).collect();
    failed.iter().for_each(|a| assert_clean_failure(a));
    assert!(
        failed.is_empty(),
        "processes failed in the creation race: {:?}",
        failed.iter().map(|a| a.run.stderr.trim()).collect::<Vec<_>>()
    );

    let log = s.log();
    assert_gapless_and_verified(&s, &log);
    let k = kinds(&log);
    assert_eq!(k[..2], ["StoreCreated", "EnvSeeded"], "genesis and seeding come first, together");
    assert_eq!(k.iter().filter(|&&k| k == "StoreCreated").count(), 1, "exactly one genesis: {k:?}");
    assert_eq!(k.iter().filter(|&&k| k == "EnvSeeded").count(), 1, "the .env is seeded once: {k:?}");
    assert_eq!(log[1]["batch"]["id"], log[0]["batch"]["id"]);
    assert_eq!(log[1]["payload"]["initial"], true);

    // Every acknowledged change is in the log, and nothing else is.
    let mut acknowledged: Vec<String> =
        attempts.iter().filter(|a| a.run.code == Some(0)).map(|a| a.value.clone()).collect();
    let mut logged = changes_by_key(&log).remove("MAX_WORKERS").unwrap_or_default();
    acknowledged.sort();
    logged.sort();
    assert_eq!(logged, acknowledged);
    assert_eq!(log.len(), 2 + acknowledged.len());

    // After the race the store opens with the key its genesis event records, and a secret round-trips.
    let with_secret = |args: &[&str]| {
        let mut cmd = s.cmd();
        if let Some(secret) = secret {
            cmd.env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", secret);
        }
        support::run(cmd.args(args))
    };
    with_secret(&["config", "set", "WEBHOOK_SECRET", "after-the-race"]).expect_code(0, "set a secret after the race");
    let again = with_secret(&["config", "set", "WEBHOOK_SECRET", "after-the-race"]).expect_code(0, "set it again");
    assert_eq!(
        again.stdout, "WEBHOOK_SECRET unchanged: it is already ********\n",
        "the secret opens under the store's key"
    );
    assert_eq!(s.key_path().exists(), secret.is_none());
    attempts
}

#[test]
fn processes_racing_to_create_a_store_with_a_key_file_make_one_genesis() {
    for _ in 0..3 {
        let attempts = race_to_create(6, None);
        assert_eq!(attempts.len(), 6);
    }
}

#[test]
fn processes_racing_to_create_a_store_with_a_given_secret_make_one_genesis() {
    for _ in 0..3 {
        race_to_create(6, Some("race-secret-0123456789abcdef"));
    }
}
