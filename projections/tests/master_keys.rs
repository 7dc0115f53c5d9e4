//! The master key's rules and fold in the pure core: a rotation moves only to a key never used and makes the
//! store's encryption name it; a batch of re-sealed values lands only under the current key and only where the
//! ciphertext it replaces is still there; a retirement is refused for an unknown key, the current key and a
//! key still in use; and a checkpoint of the result decodes to the same state.

mod common;

use cfgledger_events::decide::Reseal;
use cfgledger_events::event::{EncryptionInfo, StoredValue};
use cfgledger_events::master_key::SealedAt;
use cfgledger_events::{Command, Event, RejectionKind};
use cfgledger_projections::snapshot;
use common::World;
use serde_json::json;

const HOOK: &str = "mcpgateway:WEBHOOK_SECRET";

fn rotate_to(w: &mut World, key_id: &str) -> Result<Vec<Event>, cfgledger_events::Rejection> {
    let info = w.state.store.as_ref().expect("a store").encryption.clone();
    w.run(Command::RotateMasterKey { encryption: EncryptionInfo { key_id: key_id.into(), ..info } })
}

fn sealed_hook(w: &World) -> String {
    match &w.state.get(HOOK).expect("a value").value {
        StoredValue::Sealed(s) => s.clone(),
        other => panic!("not sealed: {other:?}"),
    }
}

fn reseal_hook(w: &mut World, key_id: &str, old: &str) -> Result<Vec<Event>, cfgledger_events::Rejection> {
    let item =
        Reseal { at: SealedAt::Setting { key: HOOK.into() }, old: old.into(), new: format!("cfgl1:{key_id}:body") };
    w.run(Command::ResealSecrets { key_id: key_id.into(), items: vec![item] })
}

#[test]
fn a_rotation_reseals_and_retires_by_the_rules() {
    let mut w = World::new();
    w.set("WEBHOOK_SECRET", json!("hook"));
    let genesis = w.state.master_keys().current().to_string();
    assert_eq!(genesis, "0011223344556677");

    let same = rotate_to(&mut w, &genesis).unwrap_err();
    assert_eq!(same.kind, RejectionKind::State);
    assert!(rotate_to(&mut w, "not hex!").is_err());
    rotate_to(&mut w, "aaaaaaaaaaaaaaaa").expect("a rotation to a new key");
    assert_eq!(w.state.master_keys().current(), "aaaaaaaaaaaaaaaa");
    assert_eq!(w.state.store.as_ref().expect("a store").encryption.key_id, "aaaaaaaaaaaaaaaa");

    // A batch under a key that is not current is refused; one whose value changed since is a no-op.
    let old = sealed_hook(&w);
    assert_eq!(reseal_hook(&mut w, "bbbbbbbbbbbbbbbb", &old).unwrap_err().kind, RejectionKind::Conflict);
    assert_eq!(reseal_hook(&mut w, "aaaaaaaaaaaaaaaa", "stale ciphertext").expect("decided"), vec![]);
    let version = w.state.version(HOOK);
    let events = reseal_hook(&mut w, "aaaaaaaaaaaaaaaa", &old).expect("a batch lands");
    assert!(matches!(&events[..], [Event::SecretsResealed(e)] if e.count() == 1));
    assert_eq!(sealed_hook(&w), "cfgl1:aaaaaaaaaaaaaaaa:body");
    assert!(w.state.version(HOOK) > version, "the setting's view is rebuilt");

    // The key a value is still under cannot be retired; the current key neither; an unknown key is missing.
    rotate_to(&mut w, "bbbbbbbbbbbbbbbb").expect("a second rotation");
    let in_use = w.run(Command::RetireMasterKey { key_id: "aaaaaaaaaaaaaaaa".into() }).unwrap_err();
    assert!(in_use.kind == RejectionKind::State && in_use.message.contains("setting mcpgateway:WEBHOOK_SECRET"));
    let current = w.run(Command::RetireMasterKey { key_id: "bbbbbbbbbbbbbbbb".into() }).unwrap_err();
    assert!(current.message.contains("is the current key"), "{}", current.message);
    let unknown = w.run(Command::RetireMasterKey { key_id: "cccccccccccccccc".into() }).unwrap_err();
    assert_eq!(unknown.kind, RejectionKind::Missing);

    reseal_hook(&mut w, "bbbbbbbbbbbbbbbb", "cfgl1:aaaaaaaaaaaaaaaa:body").expect("moved to the current key");
    w.run(Command::RetireMasterKey { key_id: "aaaaaaaaaaaaaaaa".into() }).expect("retired");
    assert!(w.state.master_keys().is_retired("aaaaaaaaaaaaaaaa"));
    assert!(w.run(Command::RetireMasterKey { key_id: "aaaaaaaaaaaaaaaa".into() }).is_err());
    assert!(rotate_to(&mut w, "aaaaaaaaaaaaaaaa").is_err(), "a rotation never returns to a used key");

    // A checkpoint of this state decodes to the same state, master keys included.
    let bytes = snapshot::encode(&w.state);
    let back = snapshot::decode(&bytes).expect("the checkpoint decodes");
    assert_eq!(back, w.state);
    assert_eq!(back.master_keys().keys.len(), 3);
}
