//! What the fold knows of renders with secrets: a subject's last record of a namespace says what it
//! received until any other event is appended, and it survives a checkpoint.

mod common;

use cfgledger_events::event::SecretsRendered;
use cfgledger_events::{Actor, Event, Source};
use cfgledger_projections::snapshot;
use common::World;
use serde_json::json;

fn reader(name: &str) -> Actor {
    Actor {
        name: name.into(),
        role: Some("config_reader".into()),
        source: Source::Api,
        address: None,
        request_id: None,
    }
}

fn rendered(w: &mut World, actor: &str, namespace: &str, format: &str, keys: &[&str]) {
    let event = SecretsRendered {
        namespace: namespace.into(),
        format: format.into(),
        keys: keys.iter().map(|k| k.to_string()).collect(),
    };
    w.append_as(&reader(actor), vec![Event::SecretsRendered(event)]);
}

fn says(w: &World, actor: &str, namespace: &str, format: &str, keys: &[&str]) -> bool {
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    w.state.render_recorded(actor, namespace, format, &keys)
}

const JWT: &str = "mcpgateway:JWT_SECRET_KEY";
const BASIC: &str = "mcpgateway:BASIC_AUTH_PASSWORD";

#[test]
fn a_record_says_what_a_subject_received_until_anything_else_is_appended() {
    let mut w = World::new();
    assert!(!says(&w, "fleet", "mcpgateway", "json", &[JWT]), "nothing recorded yet");
    rendered(&mut w, "fleet", "mcpgateway", "json", &[JWT]);
    assert!(says(&w, "fleet", "mcpgateway", "json", &[JWT]));

    // Another subject's record changes nothing of what the first one's says.
    rendered(&mut w, "other", "mcpgateway", "json", &[JWT]);
    assert!(says(&w, "fleet", "mcpgateway", "json", &[JWT]) && says(&w, "other", "mcpgateway", "json", &[JWT]));

    // Not what was recorded: another format, other keys, another namespace, another subject.
    assert!(!says(&w, "fleet", "mcpgateway", "env", &[JWT]));
    assert!(!says(&w, "fleet", "mcpgateway", "json", &[BASIC, JWT]));
    assert!(!says(&w, "fleet", "cfgledger", "json", &[JWT]));
    assert!(!says(&w, "third", "mcpgateway", "json", &[JWT]));

    // It survives a checkpoint.
    let back = snapshot::decode(&snapshot::encode(&w.state)).expect("the checkpoint decodes");
    assert_eq!(back, w.state);
    assert!(back.render_recorded("fleet", "mcpgateway", "json", &[JWT.to_string()]));

    // Any other event, even one that touches no secret: a render may give something else from then on.
    w.set("LOG_LEVEL", json!("DEBUG"));
    assert!(!says(&w, "fleet", "mcpgateway", "json", &[JWT]));
    assert!(!says(&w, "other", "mcpgateway", "json", &[JWT]));
    rendered(&mut w, "fleet", "mcpgateway", "json", &[JWT]);
    assert!(says(&w, "fleet", "mcpgateway", "json", &[JWT]));
    assert!(!says(&w, "other", "mcpgateway", "json", &[JWT]), "the other has not rendered since");
}
