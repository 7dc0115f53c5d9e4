//! Golden vectors: the exact bytes and hashes that this build writes for a fixed log, checked in under
//! `tests/vectors/`, so that any change to the canonical encoding or the hash rule fails here before it
//! can split a fleet into instances that disagree about the log. Old and unknown versions are pinned too:
//! a version 1 `SettingChanged` must decode (upcast) forever, and versions or kinds this build does not
//! know must be refused by name rather than misread.
//!
//! The vector files are the ground truth. To create them after a deliberate format change, run
//! `CFGLEDGER_BLESS=1 cargo test -p cfgledger-events --test golden` and review the diff; a normal run only
//! compares.

use cfgledger_events::event::{
    ChangeRejected, EncryptionInfo, EnvSeeded, ImportApplied, ResourceCreated, ResourceDeleted, ResourceUpdated,
    SecretGenerated, SettingChanged, SettingReset, SigningKeyRotated, StoreCreated, TokenRevoked, UserAdded,
    UserPasswordChanged, UserRemoved, UserRoleChanged, MASK,
};
use cfgledger_events::{
    build_batch, verify_link, Actor, Batch, Cause, DecodeError, Envelope, Event, Hash, Head, Record, ResourceKind,
    SeededValue, Source, StoredValue, Timestamp,
};
use serde_json::json;
use std::path::PathBuf;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("vectors")
}

fn blessing() -> bool {
    std::env::var("CFGLEDGER_BLESS").is_ok_and(|v| v == "1")
}

/// Returns the checked-in bytes of vector `name`, after asserting that they equal `actual`. With
/// `CFGLEDGER_BLESS=1` it first writes `actual` as the new vector.
fn golden(name: &str, actual: &[u8]) -> Vec<u8> {
    let path = vectors_dir().join(name);
    if blessing() {
        std::fs::create_dir_all(vectors_dir()).expect("the vectors directory can be created");
        std::fs::write(&path, actual).expect("the vector can be written");
    }
    let stored = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e} (run with CFGLEDGER_BLESS=1 to create it)", path.display()));
    if stored != actual {
        let stored_text = String::from_utf8_lossy(&stored);
        let actual_text = String::from_utf8_lossy(actual);
        let first_diff = stored_text.lines().zip(actual_text.lines()).position(|(a, b)| a != b);
        panic!(
            "{} differs from what this build produces (first differing line: {first_diff:?})\n\
             stored:\n{stored_text}\nbuilt:\n{actual_text}",
            path.display()
        );
    }
    stored
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).expect("a fixture time")
}

fn operator_cli() -> Actor {
    Actor {
        name: "alice".into(),
        role: Some("operator".into()),
        source: Source::Cli,
        address: Some("build-host-7".into()),
        request_id: None,
    }
}

fn admin_api() -> Actor {
    Actor {
        name: "bob".into(),
        role: Some("admin".into()),
        source: Source::Api,
        address: Some("10.0.0.12".into()),
        request_id: Some("req-5f2a".into()),
    }
}

fn ui_user() -> Actor {
    Actor { name: "carol".into(), role: None, source: Source::Ui, address: None, request_id: None }
}

/// A sealed value as the log holds it: literal text, because the core never encrypts by itself.
const SEALED_JWT: &str = "cfgl1:3f2a9c1d0b7e6a54:q0FyAh3Vj8cQwq2vI0pYtZ9mX1nR4bK7sE6dL8uT2yW5oP3iC";
const SEALED_WEBHOOK_OLD: &str = "cfgl1:3f2a9c1d0b7e6a54:ZmFrZS1ub25jZS0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const SEALED_WEBHOOK_NEW: &str = "cfgl1:3f2a9c1d0b7e6a54:ZmFrZS1ub25jZS0yBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
const SEALED_DB_URL: &str = "cfgl1:3f2a9c1d0b7e6a54:ZmFrZS1ub25jZS0zCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC";

/// One append: who, when, why, and the events.
struct FixtureBatch {
    occurred_at: Timestamp,
    actor: Actor,
    batch: Batch,
    events: Vec<Event>,
}

fn genesis() -> Event {
    Event::StoreCreated(StoreCreated {
        store_id: "7d3c1e52-0f4a-4b8e-9a61-2c5d8e9f0a1b".into(),
        format: cfgledger_events::LEGACY_STORE_FORMAT.into(),
        encryption: EncryptionInfo {
            algorithm: "xchacha20poly1305".into(),
            kdf: "argon2id:m=19456,t=2,p=1".into(),
            salt: "00112233445566778899aabbccddeeff".into(),
            key_id: "3f2a9c1d0b7e6a54".into(),
        },
    })
}

/// A log that holds every event kind, every cause, every actor shape, plain and sealed values, values
/// with and without a previous one, an object whose keys are given out of order, and text that needs
/// escaping.
fn fixture() -> Vec<FixtureBatch> {
    vec![
        FixtureBatch {
            occurred_at: at("2026-11-21T18:22:00.123456Z"),
            actor: Actor::system(),
            batch: Batch {
                id: "b0000000000000000000000000000001".into(),
                cause: Cause::Open { env_file: Some(".env".into()) },
                reason: None,
            },
            events: vec![
                genesis(),
                Event::EnvSeeded(EnvSeeded {
                    file: ".env".into(),
                    initial: true,
                    values: vec![
                        SeededValue { key: "LOG_LEVEL".into(), value: StoredValue::Plain(json!("debug")) },
                        SeededValue { key: "JWT_SECRET_KEY".into(), value: StoredValue::Sealed(SEALED_JWT.into()) },
                        SeededValue { key: "FEDERATION_PEERS".into(), value: StoredValue::Plain(json!([])) },
                    ],
                    unknown_keys: vec!["LEGACY_FLAG".into(), "OLD_PORT".into()],
                }),
            ],
        },
        FixtureBatch {
            occurred_at: at("2026-11-21T18:25:13.000001Z"),
            actor: operator_cli(),
            batch: Batch {
                id: "b0000000000000000000000000000002".into(),
                cause: Cause::Cli { command: "config set".into() },
                reason: Some("more workers for the \"launch\" peak\nticket OPS-42".into()),
            },
            events: vec![Event::SettingChanged(SettingChanged {
                key: "MAX_WORKERS".into(),
                value: StoredValue::Plain(json!(8)),
                previous: None,
            })],
        },
        FixtureBatch {
            occurred_at: at("2026-11-22T09:00:00Z"),
            actor: admin_api(),
            batch: Batch {
                id: "b0000000000000000000000000000003".into(),
                cause: Cause::Api { method: "PUT".into(), path: "/admin/config/WEBHOOK_SECRET".into() },
                reason: None,
            },
            events: vec![
                Event::SettingChanged(SettingChanged {
                    key: "WEBHOOK_SECRET".into(),
                    value: StoredValue::Sealed(SEALED_WEBHOOK_NEW.into()),
                    previous: Some(StoredValue::Sealed(SEALED_WEBHOOK_OLD.into())),
                }),
                Event::SettingChanged(SettingChanged {
                    key: "LOG_LEVEL".into(),
                    value: StoredValue::Plain(json!("warn")),
                    previous: Some(StoredValue::Plain(json!("debug"))),
                }),
                Event::SettingChanged(SettingChanged {
                    key: "FEATURE_MATRIX".into(),
                    value: StoredValue::Plain(json!({
                        "zeta": [true, null, 1.5, -7, 18446744073709551615u64],
                        "alpha": {"ünïcode": "✓ \u{1F980} tab\there", "empty": {}},
                    })),
                    previous: Some(StoredValue::Plain(json!(null))),
                }),
            ],
        },
        FixtureBatch {
            occurred_at: at("2026-11-22T09:00:00.5Z"),
            actor: ui_user(),
            batch: Batch {
                id: "b0000000000000000000000000000004".into(),
                cause: Cause::Open { env_file: None },
                reason: None,
            },
            events: vec![
                Event::SettingReset(SettingReset {
                    key: "MAX_WORKERS".into(),
                    previous: Some(StoredValue::Plain(json!(8))),
                }),
                Event::SettingReset(SettingReset { key: "CACHE_TTL".into(), previous: None }),
            ],
        },
        FixtureBatch {
            occurred_at: at("2027-01-01T00:00:00Z"),
            actor: admin_api(),
            batch: Batch {
                id: "b0000000000000000000000000000005".into(),
                cause: Cause::Api { method: "PUT".into(), path: "/admin/config/DATABASE_URL".into() },
                reason: Some("migrate".into()),
            },
            events: vec![
                Event::ChangeRejected(ChangeRejected {
                    key: "DATABASE_URL".into(),
                    action: "set".into(),
                    reason: "locked".into(),
                    message: "key DATABASE_URL is locked: it can only be seeded from the environment".into(),
                    attempted: Some(StoredValue::Sealed(SEALED_DB_URL.into())),
                }),
                Event::ChangeRejected(ChangeRejected {
                    key: "AUTH_REQUIRED".into(),
                    action: "reset".into(),
                    reason: "locked".into(),
                    message: "key AUTH_REQUIRED is locked: it can only be seeded from the environment".into(),
                    attempted: None,
                }),
            ],
        },
        FixtureBatch {
            occurred_at: at("2027-01-01T00:00:01Z"),
            actor: Actor::system(),
            batch: Batch {
                id: "b0000000000000000000000000000006".into(),
                cause: Cause::Open { env_file: Some("/etc/cfgledger/.env".into()) },
                reason: None,
            },
            events: vec![Event::EnvSeeded(EnvSeeded {
                file: "/etc/cfgledger/.env".into(),
                initial: false,
                values: vec![SeededValue { key: "PLUGINS_ENABLED".into(), value: StoredValue::Plain(json!(true)) }],
                unknown_keys: vec![],
            })],
        },
        FixtureBatch {
            occurred_at: at("2027-01-01T00:00:02Z"),
            actor: Actor::system(),
            batch: Batch {
                id: "b0000000000000000000000000000007".into(),
                cause: Cause::Open { env_file: None },
                reason: Some("JWT_SECRET_KEY had no value; generated one".into()),
            },
            events: vec![Event::SecretGenerated(SecretGenerated {
                key: "JWT_SECRET_KEY".into(),
                value: StoredValue::Sealed(SEALED_JWT.into()),
            })],
        },
        FixtureBatch {
            occurred_at: at("2027-01-02T10:00:00Z"),
            actor: operator_cli(),
            batch: Batch {
                id: "b0000000000000000000000000000008".into(),
                cause: Cause::Cli { command: "user add".into() },
                reason: None,
            },
            events: vec![
                Event::UserAdded(UserAdded {
                    name: "dana@example.com".into(),
                    role: "auditor".into(),
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g".into(),
                }),
                Event::UserRemoved(UserRemoved { name: "erin".into() }),
            ],
        },
        FixtureBatch {
            occurred_at: at("2027-01-02T10:30:00Z"),
            actor: admin_api(),
            batch: Batch {
                id: "b0000000000000000000000000000009".into(),
                cause: Cause::Import {
                    digest: "blake3:5c1f0000000000000000000000000000000000000000000000000000000000aa".into(),
                    via: "POST /admin/config/import".into(),
                },
                reason: Some("promote staging".into()),
            },
            events: vec![
                Event::ImportApplied(ImportApplied {
                    digest: "blake3:5c1f0000000000000000000000000000000000000000000000000000000000aa".into(),
                    source: Some(json!({"store_id": "staging-1", "seq": 42, "head_hash": "00ff"})),
                    created: vec!["CACHE_TTL".into()],
                    updated: vec!["LOG_LEVEL".into()],
                    unchanged: 12,
                    locked: vec!["AUTH_REQUIRED".into()],
                }),
                Event::SettingChanged(SettingChanged {
                    key: "CACHE_TTL".into(),
                    value: StoredValue::Plain(json!("5m")),
                    previous: None,
                }),
                Event::SettingChanged(SettingChanged {
                    key: "LOG_LEVEL".into(),
                    value: StoredValue::Plain(json!("info")),
                    previous: Some(StoredValue::Plain(json!("warn"))),
                }),
            ],
        },
        FixtureBatch {
            occurred_at: at("2027-01-03T08:00:00Z"),
            actor: admin_api(),
            batch: Batch {
                id: "b0000000000000000000000000000010".into(),
                cause: Cause::Api { method: "POST".into(), path: "/tools".into() },
                reason: None,
            },
            events: vec![
                Event::ResourceCreated(ResourceCreated {
                    kind: ResourceKind::Tools,
                    name: "search".into(),
                    fields: json!({
                        "name": "search", "url": "https://api.example/search", "tags": ["web"],
                        "auth_type": "bearer", "auth_value": SEALED_WEBHOOK_NEW, "vendor_extra": {"z": 1, "a": 2},
                    }),
                }),
                Event::ResourceUpdated(ResourceUpdated {
                    kind: ResourceKind::Tools,
                    name: "search".into(),
                    fields: json!({"name": "search", "url": "https://api.example/v2/search", "is_active": false}),
                    changed: vec!["auth_type".into(), "auth_value".into(), "is_active".into(), "url".into()],
                }),
                Event::ResourceDeleted(ResourceDeleted { kind: ResourceKind::Roots, name: "file:///srv/data".into() }),
            ],
        },
        FixtureBatch {
            occurred_at: at("2027-01-04T09:00:00Z"),
            actor: admin_api(),
            batch: Batch {
                id: "b0000000000000000000000000000011".into(),
                cause: Cause::Rollback {
                    to_seq: 12,
                    to: "2027-01-01T00:00:00Z".into(),
                    via: "POST /admin/config/rollback".into(),
                },
                reason: Some("undo the new year's changes".into()),
            },
            events: vec![Event::SettingChanged(SettingChanged {
                key: "LOG_LEVEL".into(),
                value: StoredValue::Plain(json!("warn")),
                previous: Some(StoredValue::Plain(json!("info"))),
            })],
        },
        FixtureBatch {
            occurred_at: at("2027-01-04T09:05:00Z"),
            actor: operator_cli(),
            batch: Batch {
                id: "b0000000000000000000000000000012".into(),
                cause: Cause::Revert { batch: "b0000000000000000000000000000011".into(), via: "revert".into() },
                reason: None,
            },
            events: vec![Event::SettingChanged(SettingChanged {
                key: "LOG_LEVEL".into(),
                value: StoredValue::Plain(json!("info")),
                previous: Some(StoredValue::Plain(json!("warn"))),
            })],
        },
        FixtureBatch {
            occurred_at: at("2027-01-05T10:00:00Z"),
            actor: operator_cli(),
            batch: Batch {
                id: "b0000000000000000000000000000013".into(),
                cause: Cause::Clone {
                    source_store_id: "5f0c1c1e-8a53-4b0e-9d1e-2f4c9b7a6d10".into(),
                    source_seq: 4242,
                    source_head_hash: "9f2c5a1b7e3d4c6a8b0e1f2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3".into(),
                    via: "clone".into(),
                },
                reason: Some("stand up staging from prod".into()),
            },
            events: vec![Event::SettingChanged(SettingChanged {
                key: "MAX_WORKERS".into(),
                value: StoredValue::Plain(json!(16)),
                previous: None,
            })],
        },
        // Credentials and keys (issue 17): appended, so every record above keeps its bytes and hash.
        FixtureBatch {
            occurred_at: at("2027-01-06T11:00:00Z"),
            actor: operator_cli(),
            batch: Batch {
                id: "b0000000000000000000000000000014".into(),
                cause: Cause::Cli { command: "user passwd".into() },
                reason: Some("suspected leak".into()),
            },
            events: vec![
                Event::UserPasswordChanged(UserPasswordChanged {
                    name: "dana@example.com".into(),
                    password_hash: SEALED_PASSWORD_HASH.into(),
                }),
                Event::UserRoleChanged(UserRoleChanged {
                    name: "dana@example.com".into(),
                    role: "viewer".into(),
                    previous: "auditor".into(),
                }),
            ],
        },
        FixtureBatch {
            occurred_at: at("2027-01-06T11:05:00Z"),
            actor: operator_cli(),
            batch: Batch {
                id: "b0000000000000000000000000000015".into(),
                cause: Cause::Cli { command: "token rotate-key".into() },
                reason: Some("quarterly rotation".into()),
            },
            events: vec![Event::SigningKeyRotated(SigningKeyRotated {
                kid: "5be0a7c2d1f43e96".into(),
                sealed_key: SEALED_SIGNING_KEY.into(),
                grace_secs: 3600,
            })],
        },
        FixtureBatch {
            occurred_at: at("2027-01-06T11:10:00Z"),
            actor: admin_api(),
            batch: Batch {
                id: "b0000000000000000000000000000016".into(),
                cause: Cause::Api { method: "POST".into(), path: "/ui/logout".into() },
                reason: None,
            },
            events: vec![Event::TokenRevoked(TokenRevoked {
                token_hash: "6a1f0c3e9b2d4f5a7c8e0b1d2f3a4c5e6b7d8f9a0c1e2b3d4f5a6c7e8f9a0b1c".into(),
                expires_at: 1_799_323_800,
            })],
        },
    ]
}

/// A sealed password hash and a sealed signing key as the fixture stores them (opaque text to the encoding).
const SEALED_PASSWORD_HASH: &str = "cfgl1:3f2a9c1d0b7e6a54:cGFzc3dvcmQtaGFzaC1jaXBoZXJ0ZXh0LWZpeHR1cmU";
const SEALED_SIGNING_KEY: &str = "cfgl1:3f2a9c1d0b7e6a54:c2lnbmluZy1rZXktY2lwaGVydGV4dC1maXh0dXJlLTAx";

/// Builds the fixture log with `build_batch`, batch after batch, from an empty log.
fn build_fixture() -> Vec<(Envelope, Record)> {
    let mut head = Head::EMPTY;
    let mut out = Vec::new();
    for b in fixture() {
        for (env, rec) in build_batch(head, b.occurred_at, &b.actor, &b.batch, b.events) {
            head = Head { seq: rec.seq, hash: rec.hash };
            out.push((env, rec));
        }
    }
    out
}

/// The checked-in hash file: one line per record, `seq prev_hash hash`.
fn hash_lines(records: &[Record]) -> String {
    records.iter().map(|r| format!("{} {} {}\n", r.seq, r.prev_hash, r.hash)).collect()
}

fn parse_hash_lines(text: &str) -> Vec<(u64, Hash, Hash)> {
    text.lines()
        .map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 3, "malformed hash line {line:?}");
            let seq = parts[0].parse().expect("a seq");
            (seq, Hash::from_hex(parts[1]).expect("a prev hash"), Hash::from_hex(parts[2]).expect("a hash"))
        })
        .collect()
}

fn envelope_lines(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        assert!(!r.envelope.contains(&b'\n'), "compact JSON never holds a raw newline");
        out.extend_from_slice(&r.envelope);
        out.push(b'\n');
    }
    out
}

/// Reads the stored log back as records, the way a store hands them to the verifier: the bytes from the
/// envelope file, the links from the hash file, the columns from the decoded envelope.
fn stored_records(envelopes: &[u8], hashes: &str) -> Vec<Record> {
    let lines: Vec<&[u8]> = envelopes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let links = parse_hash_lines(hashes);
    assert_eq!(lines.len(), links.len(), "one hash line per envelope line");
    lines
        .into_iter()
        .zip(links)
        .map(|(bytes, (seq, prev_hash, hash))| {
            let env = Envelope::decode(bytes).unwrap_or_else(|e| panic!("stored seq {seq} decodes: {e}"));
            Record {
                seq,
                occurred_at: env.occurred_at,
                kind: env.event.kind().to_string(),
                actor: env.actor.name.clone(),
                batch_id: env.batch.id.clone(),
                key: env.event.subject(),
                envelope: bytes.to_vec(),
                prev_hash,
                hash,
            }
        })
        .collect()
}

#[test]
fn the_fixture_covers_every_event_kind() {
    let kinds: std::collections::BTreeSet<&str> = build_fixture().iter().map(|(e, _)| e.event.kind()).collect();
    let expected = [
        "ChangeRejected",
        "EnvSeeded",
        "ImportApplied",
        "ResourceCreated",
        "ResourceDeleted",
        "ResourceUpdated",
        "SecretGenerated",
        "SettingChanged",
        "SettingReset",
        "SigningKeyRotated",
        "StoreCreated",
        "TokenRevoked",
        "UserAdded",
        "UserPasswordChanged",
        "UserRemoved",
        "UserRoleChanged",
    ];
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), expected);
}

#[test]
fn envelopes_are_encoded_byte_for_byte_as_checked_in() {
    let built: Vec<Record> = build_fixture().into_iter().map(|(_, r)| r).collect();
    golden("chain.envelopes.jsonl", &envelope_lines(&built));
}

#[test]
fn hashes_are_linked_as_checked_in() {
    let built: Vec<Record> = build_fixture().into_iter().map(|(_, r)| r).collect();
    let stored = golden("chain.hashes", hash_lines(&built).as_bytes());
    let links = parse_hash_lines(std::str::from_utf8(&stored).expect("the hash file is text"));
    assert_eq!(links.len(), built.len());
    assert_eq!(links[0].1, Hash::ZERO, "the genesis event links to the zero hash");
    for (rec, (seq, prev, hash)) in built.iter().zip(&links) {
        assert_eq!((rec.seq, rec.prev_hash, rec.hash), (*seq, *prev, *hash), "seq {seq}");
        // The link rule, spelled out with blake3 itself: the previous hash, then the envelope bytes.
        let mut joined = prev.0.to_vec();
        joined.extend_from_slice(&rec.envelope);
        assert_eq!(blake3::hash(&joined).as_bytes(), &hash.0, "seq {seq}");
    }
}

#[test]
fn stored_vectors_verify_and_decode_to_the_constructed_envelopes() {
    let built = build_fixture();
    let records: Vec<Record> = built.iter().map(|(_, r)| r.clone()).collect();
    let envelopes = golden("chain.envelopes.jsonl", &envelope_lines(&records));
    let hashes = golden("chain.hashes", hash_lines(&records).as_bytes());
    let stored = stored_records(&envelopes, std::str::from_utf8(&hashes).expect("the hash file is text"));
    assert_eq!(stored.len(), built.len());
    let mut head = Head::EMPTY;
    for (rec, (env, built_rec)) in stored.iter().zip(&built) {
        let decoded = verify_link(&head, rec).unwrap_or_else(|e| panic!("stored vector fails to verify: {e}"));
        assert_eq!(&decoded, env, "seq {} decodes to the envelope it was built from", rec.seq);
        assert_eq!(rec, built_rec, "seq {}: the record columns match what build_batch made", rec.seq);
        head = Head { seq: rec.seq, hash: rec.hash };
    }
    assert_eq!(head.seq, 27);
}

#[test]
fn one_envelope_is_spelled_out_in_full() {
    // The whole chain is pinned by the files; this one line is here so that a reader sees the format.
    let built = build_fixture();
    let (_, rec) = &built[3];
    let expected = concat!(
        r#"{"seq":4,"occurred_at":"2026-11-22T09:00:00.000000Z","#,
        r#""actor":{"name":"bob","role":"admin","source":"api","address":"10.0.0.12","request_id":"req-5f2a"},"#,
        r#""batch":{"id":"b0000000000000000000000000000003","cause":{"type":"api","method":"PUT","#,
        r#""path":"/admin/config/WEBHOOK_SECRET"}},"kind":"SettingChanged","v":2,"#,
        r#""payload":{"key":"WEBHOOK_SECRET","#,
        r#""value":{"sealed":"cfgl1:3f2a9c1d0b7e6a54:ZmFrZS1ub25jZS0yBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"},"#,
        r#""previous":{"sealed":"cfgl1:3f2a9c1d0b7e6a54:ZmFrZS1ub25jZS0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}}"#,
    );
    assert_eq!(std::str::from_utf8(&rec.envelope).expect("utf-8"), expected);
    assert!(!expected.contains(MASK), "the log keeps ciphertext, never the mask");
}

/// A `SettingChanged` as pre-release builds wrote it: `"v":1`, a bare JSON value, no previous value.
const LEGACY_SETTING_CHANGED_V1: &str = concat!(
    r#"{"seq":2,"occurred_at":"2026-03-01T08:30:00.000000Z","#,
    r#""actor":{"name":"dave","source":"cli","address":"old-host"},"#,
    r#""batch":{"id":"legacy-batch-0002","cause":{"type":"cli","command":"config set"}},"#,
    r#""kind":"SettingChanged","v":1,"payload":{"key":"REQUEST_SIZE_LIMIT","value":2097152}}"#,
);

/// The legacy log: a genesis event written by this build, then the version 1 record on top of it.
fn legacy_genesis() -> Record {
    let batch = Batch { id: "legacy-batch-0001".into(), cause: Cause::Open { env_file: None }, reason: None };
    let mut built = build_batch(Head::EMPTY, at("2026-03-01T08:00:00Z"), &Actor::system(), &batch, vec![genesis()]);
    built.remove(0).1
}

#[test]
fn setting_changed_v1_is_upcast_and_its_stored_hash_verifies() {
    let bytes = golden("legacy.setting_changed.v1.json", LEGACY_SETTING_CHANGED_V1.as_bytes());
    let genesis = legacy_genesis();
    let head = Head { seq: genesis.seq, hash: genesis.hash };
    let links = golden("legacy.hashes", hash_lines(&[genesis.clone(), legacy_record(&head, &bytes)]).as_bytes());
    let links = parse_hash_lines(std::str::from_utf8(&links).expect("text"));
    assert_eq!((links[0].1, links[0].2), (Hash::ZERO, genesis.hash), "the legacy genesis is unchanged");
    let (seq, prev_hash, hash) = links[1];
    let rec = Record { seq, prev_hash, hash, ..legacy_record(&head, &bytes) };
    verify_link(&Head::EMPTY, &genesis).expect("the legacy genesis verifies");

    let env = verify_link(&head, &rec).unwrap_or_else(|e| panic!("the version 1 record verifies: {e}"));
    let expected = Envelope {
        seq: 2,
        occurred_at: at("2026-03-01T08:30:00Z"),
        actor: Actor {
            name: "dave".into(),
            role: None,
            source: Source::Cli,
            address: Some("old-host".into()),
            request_id: None,
        },
        batch: Batch {
            id: "legacy-batch-0002".into(),
            cause: Cause::Cli { command: "config set".into() },
            reason: None,
        },
        event: Event::SettingChanged(SettingChanged {
            key: "REQUEST_SIZE_LIMIT".into(),
            value: StoredValue::Plain(json!(2_097_152)),
            previous: None,
        }),
    };
    assert_eq!(env, expected);
    assert_eq!(Envelope::decode(&bytes), Ok(expected.clone()));
    // Re-encoding writes version 2: the hash holds only because verification reads the stored bytes.
    let reencoded = expected.encode();
    assert_ne!(reencoded, bytes);
    assert!(std::str::from_utf8(&reencoded).expect("utf-8").contains(r#""v":2"#));
    assert_ne!(Hash::link(&head.hash, &reencoded), rec.hash);
}

/// The columns a store would keep for the legacy record, with the hash this build computes over its bytes.
fn legacy_record(head: &Head, bytes: &[u8]) -> Record {
    Record {
        seq: 2,
        occurred_at: at("2026-03-01T08:30:00Z"),
        kind: "SettingChanged".into(),
        actor: "dave".into(),
        batch_id: "legacy-batch-0002".into(),
        key: Some("REQUEST_SIZE_LIMIT".into()),
        envelope: bytes.to_vec(),
        prev_hash: head.hash,
        hash: Hash::link(&head.hash, bytes),
    }
}

const UNSUPPORTED_VERSION: &str = concat!(
    r#"{"seq":7,"occurred_at":"2031-05-05T05:05:05.000000Z","#,
    r#""actor":{"name":"future","source":"api"},"#,
    r#""batch":{"id":"future-batch","cause":{"type":"api","method":"PUT","path":"/admin/config/LOG_LEVEL"}},"#,
    r#""kind":"SettingChanged","v":99,"payload":{"key":"LOG_LEVEL","value":{"plain":"info"},"hint":"new"}}"#,
);

const UNKNOWN_KIND: &str = concat!(
    r#"{"seq":8,"occurred_at":"2031-05-05T05:05:06.000000Z","#,
    r#""actor":{"name":"future","source":"api"},"#,
    r#""batch":{"id":"future-batch","cause":{"type":"api","method":"POST","path":"/gateways"}},"#,
    r#""kind":"GatewayTeleported","v":1,"payload":{"name":"gw-1"}}"#,
);

#[test]
fn a_version_newer_than_this_build_is_refused_by_name() {
    let bytes = golden("unsupported_version.setting_changed.v99.json", UNSUPPORTED_VERSION.as_bytes());
    assert_eq!(
        Envelope::decode(&bytes),
        Err(DecodeError::UnsupportedVersion { kind: "SettingChanged".into(), version: 99 })
    );
    // The chain check passes the hash and then fails on the decode, naming the seq.
    let head = Head { seq: 6, hash: Hash([7; 32]) };
    let rec = Record {
        seq: 7,
        occurred_at: at("2031-05-05T05:05:05Z"),
        kind: "SettingChanged".into(),
        actor: "future".into(),
        batch_id: "future-batch".into(),
        key: Some("LOG_LEVEL".into()),
        envelope: bytes.clone(),
        prev_hash: head.hash,
        hash: Hash::link(&head.hash, &bytes),
    };
    let err = verify_link(&head, &rec).expect_err("an unreadable version does not verify");
    assert_eq!(err.seq, 7);
    assert!(err.reason.contains("version 99"), "{err}");
}

#[test]
fn an_unknown_kind_is_refused_by_name() {
    let bytes = golden("unknown_kind.json", UNKNOWN_KIND.as_bytes());
    assert_eq!(Envelope::decode(&bytes), Err(DecodeError::UnknownKind("GatewayTeleported".into())));
}

#[test]
fn entity_records_index_their_subject_and_older_ones_without_it_still_verify() {
    let built = build_fixture();
    let (env, rec) = built.iter().find(|(e, _)| e.event.kind() == "ResourceCreated").expect("a created entity");
    assert_eq!(rec.key.as_deref(), Some("tools/search"), "the key column holds KIND/NAME");
    // Written before entity subjects were indexed: no key, still valid.
    let legacy = Record { key: None, ..rec.clone() };
    assert_eq!(cfgledger_events::verify_record(&legacy).expect("a legacy entity record verifies"), *env);
    let wrong = Record { key: Some("tools/other".into()), ..rec.clone() };
    assert!(cfgledger_events::verify_record(&wrong).is_err(), "a key column naming another entity is refused");
    // A setting record must carry its key.
    let (_, set) = built.iter().find(|(e, _)| e.event.kind() == "SettingChanged").expect("a setting change");
    assert!(cfgledger_events::verify_record(&Record { key: None, ..set.clone() }).is_err());
}

#[test]
fn an_entity_event_of_an_unknown_kind_fails_to_decode_naming_it() {
    let built = build_fixture();
    let (_, rec) = built.iter().find(|(e, _)| e.event.kind() == "ResourceCreated").expect("a created entity");
    let text = String::from_utf8(rec.envelope.clone()).expect("envelopes are UTF-8");
    assert!(text.contains(r#""payload":{"kind":"tools","#), "{text}");
    let bytes = text.replace(r#""payload":{"kind":"tools","#, r#""payload":{"kind":"widgets","#).into_bytes();
    let Err(DecodeError::Payload { kind, version, message }) = Envelope::decode(&bytes) else {
        panic!("an unknown entity kind must not decode: {:?}", Envelope::decode(&bytes));
    };
    assert_eq!((kind.as_str(), version), ("ResourceCreated", 1));
    assert!(message.contains("unknown entity type: widgets"), "{message}");
    // Stored with a valid link, it is refused when the log is read, naming the seq and the kind.
    let head = Head { seq: rec.seq - 1, hash: rec.prev_hash };
    let stored = Record { envelope: bytes.clone(), hash: Hash::link(&head.hash, &bytes), ..rec.clone() };
    let err = verify_link(&head, &stored).expect_err("an unknown entity kind does not verify");
    assert_eq!(err.seq, rec.seq);
    assert!(err.reason.contains("unknown entity type: widgets"), "{err}");
}
