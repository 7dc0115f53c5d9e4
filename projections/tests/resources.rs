//! `decide` and the fold for the resource registry: entities are created, replaced, patched and deleted
//! as events; identity is the name (the uri for resources and roots) and cannot change; fields the store
//! does not know are kept; credentials are sealed, bound to the entity, kept when an update omits them,
//! and never stored in plaintext; references are checked both ways (a server naming a missing tool is
//! refused, deleting a referenced tool is a conflict naming the server).

use cfgledger_events::resource::auth_binding;
use cfgledger_events::{
    build_batch, Actor, Batch, Cause, Command, Event, Head, RejectionKind, ResourceKind, Sealer, Timestamp,
};
mod common;

use common::{TestSealer, World};
use serde_json::{json, Map, Value};

/// The registry's helpers on the shared test world.
trait Registry {
    fn create(&mut self, kind: ResourceKind, fields: Value) -> Result<Vec<Event>, cfgledger_events::Rejection>;
    fn fields(&self, kind: ResourceKind, name: &str) -> Map<String, Value>;
    fn credentials(&self, kind: ResourceKind, name: &str) -> Value;
}

impl Registry for World {
    fn create(&mut self, kind: ResourceKind, fields: Value) -> Result<Vec<Event>, cfgledger_events::Rejection> {
        self.run(Command::CreateResource { kind, fields: object(fields) })
    }

    fn fields(&self, kind: ResourceKind, name: &str) -> Map<String, Value> {
        self.state.resource_entry(kind, name).map(|e| e.fields.clone()).unwrap_or_default()
    }

    /// The credentials sealed in an entity's `auth_value`, opened.
    fn credentials(&self, kind: ResourceKind, name: &str) -> Value {
        let fields = self.fields(kind, name);
        let sealed = fields.get("auth_value").and_then(Value::as_str).expect("an auth_value");
        let bytes = TestSealer.open(&auth_binding(kind, name), sealed).expect("sealed for this entity");
        serde_json::from_slice(&bytes).expect("json")
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("an object, not {other}"),
    }
}

#[test]
fn an_entity_is_created_with_its_unknown_fields_and_its_credentials_sealed() {
    let mut w = World::new();
    let events = w
        .create(
            ResourceKind::Tools,
            json!({"name": "search", "url": "https://api.example/s", "auth_type": "basic",
                   "auth_username": "svc", "auth_password": "pa55-word", "vendor": {"x": 1}, "version": 99}),
        )
        .expect("created");
    assert!(matches!(&events[..], [Event::ResourceCreated(_)]));
    let stored = w.fields(ResourceKind::Tools, "search");
    assert_eq!(stored.get("vendor"), Some(&json!({"x": 1})), "unknown fields are kept");
    assert!(stored.get("version").is_none(), "read-only output fields are not stored");
    assert!(stored.get("auth_password").is_none() && stored.get("auth_username").is_none());
    let text: String = events.iter().map(|e| e.payload_value().to_string()).collect();
    assert!(!text.contains("pa55-word") && !text.contains("\"svc\""), "no plaintext credential in the event");
    assert_eq!(
        w.credentials(ResourceKind::Tools, "search"),
        json!({"auth_username": "svc", "auth_password": "pa55-word"})
    );
    let again =
        w.decide(Command::CreateResource { kind: ResourceKind::Tools, fields: object(json!({"name": "search"})) });
    assert_eq!(again.expect_err("exists").kind, RejectionKind::Conflict);
}

/// MCP Gateway's forms are stored in one form: tags as `{"id", "label"}` become their labels, `authheaders` is
/// `headers`, a JSON Schema's `required` is sorted (a set), and OAuth and query-parameter secrets are sealed with
/// the other credentials, never kept in the plain fields.
#[test]
fn the_gateways_forms_are_stored_in_one_form_with_every_secret_sealed() {
    let mut w = World::new();
    let mut written = Vec::new();
    written.extend(
        w.create(
            ResourceKind::Tools,
            json!({"name": "t", "url": "https://x/t", "tags": [{"id": "prod", "label": "Prod"}, "edge", {"id": "eu"}],
               "auth_type": "authheaders", "auth_header_key": "X-K", "auth_header_value": "hv-1",
               "input_schema": {"type": "object", "required": ["b", "a", "b"],
                                "properties": {"n": {"type": "object", "required": ["z", "y"]}}}}),
        )
        .expect("created"),
    );
    let t = w.fields(ResourceKind::Tools, "t");
    assert_eq!(t["tags"], json!(["Prod", "edge", "eu"]));
    assert_eq!(t["auth_type"], "headers");
    assert_eq!(t["input_schema"]["required"], json!(["a", "b"]));
    assert_eq!(t["input_schema"]["properties"]["n"]["required"], json!(["y", "z"]));
    // The same tool with `required` in another order is the same tool: a PUT of it appends nothing.
    let same = w.run(Command::ReplaceResource {
        kind: ResourceKind::Tools,
        name: "t".into(),
        fields: object(json!({"name": "t", "url": "https://x/t", "tags": ["Prod", "edge", "eu"],
            "input_schema": {"type": "object", "required": ["a", "b"],
                             "properties": {"n": {"type": "object", "required": ["z", "y"]}}}})),
    });
    assert_eq!(same.expect("accepted"), Vec::<Event>::new());

    written.extend(
        w.create(
            ResourceKind::Gateways,
            json!({"name": "o", "url": "https://o", "auth_type": "oauth",
               "oauth_config": {"grant_type": "client_credentials", "client_id": "cid", "client_secret": "cs-1",
                                "token_url": "https://o/token"}}),
        )
        .expect("created"),
    );
    let o = w.fields(ResourceKind::Gateways, "o");
    assert_eq!(
        o["oauth_config"],
        json!({"grant_type": "client_credentials", "client_id": "cid", "token_url": "https://o/token"})
    );
    assert_eq!(w.credentials(ResourceKind::Gateways, "o"), json!({"oauth_config": {"client_secret": "cs-1"}}));
    written.extend(
        w.create(
            ResourceKind::Gateways,
            json!({"name": "q", "url": "https://q", "auth_type": "query_param",
               "auth_query_param_key": "api_key", "auth_query_param_value": "qk-1"}),
        )
        .expect("created"),
    );
    assert_eq!(
        w.credentials(ResourceKind::Gateways, "q"),
        json!({"auth_query_param_key": "api_key", "auth_query_param_value": "qk-1"})
    );
    let all: String = written.iter().map(|e| e.payload_value().to_string()).collect();
    for secret in ["hv-1", "cs-1", "qk-1"] {
        assert!(!all.contains(secret), "{secret} is sealed, never in an event");
    }
    // A public OAuth client holds no secret: accepted by hand too. Other types need their credentials.
    w.create(
        ResourceKind::Gateways,
        json!({"name": "pub", "url": "https://p", "auth_type": "oauth", "oauth_config": {"client_id": "c"}}),
    )
    .expect("a public client");
}

#[test]
fn bad_input_is_refused_with_a_message_naming_the_field() {
    let w = World::new();
    let cases = [
        (ResourceKind::Tools, json!({"url": "https://x/y"}), "tool missing required field: name"),
        (ResourceKind::Resources, json!({"name": "x"}), "resource missing required field: uri"),
        (ResourceKind::Tools, json!({"name": "t", "url": "not a url"}), "field url expects a URL"),
        (ResourceKind::Tools, json!({"name": "t", "tags": "web"}), "field tags expects a list of strings"),
        (ResourceKind::Tools, json!({"name": "t", "is_active": "yes"}), "field is_active expects true or false"),
        (ResourceKind::Tools, json!({"name": "t", "auth_type": "bearer"}), "needs its credentials"),
        (
            ResourceKind::Tools,
            json!({"name": "t", "auth_type": "basic", "auth_username": "u"}),
            "auth_username and auth_password",
        ),
        (
            ResourceKind::Tools,
            json!({"name": "t", "auth_type": "magic", "auth_token": "x"}),
            "basic, bearer, headers, oauth, query_param (or authheaders)",
        ),
        (
            ResourceKind::Tools,
            json!({"name": "t", "tags": [{"id": 1}]}),
            r#"tags expects a list of strings or of {"id", "label"} objects"#,
        ),
        (ResourceKind::Tools, json!({"name": "t", "tags": [7]}), "field tags expects"),
        (
            ResourceKind::Gateways,
            json!({"name": "g", "url": "https://g", "auth_type": "query_param", "auth_query_param_key": "k"}),
            "auth_query_param_key and auth_query_param_value",
        ),
        (ResourceKind::Roots, json!({"uri": "file:///r", "auth_token": "x"}), "carry no credentials"),
        (ResourceKind::Servers, json!({"name": "s", "associated_tools": ["ghost"]}), "does not exist: tools/ghost"),
    ];
    for (kind, fields, expected) in cases {
        let err = w.decide(Command::CreateResource { kind, fields: object(fields.clone()) }).expect_err("refused");
        assert_eq!(err.kind, RejectionKind::Invalid, "{fields}");
        assert!(err.message.contains(expected), "{fields}: {}", err.message);
        assert!(!err.message.contains("pa55"), "no credential in a message");
    }
}

#[test]
fn updates_keep_credentials_they_omit_and_identity_cannot_change() {
    let mut w = World::new();
    w.create(
        ResourceKind::Gateways,
        json!({"name": "gw", "url": "https://gw/", "auth_type": "bearer", "auth_token": "t0k"}),
    )
    .expect("created");
    let sealed = w.fields(ResourceKind::Gateways, "gw")["auth_value"].clone();

    // PUT without credentials: the stored ones stay.
    let put = |fields: Value| Command::ReplaceResource {
        kind: ResourceKind::Gateways,
        name: "gw".into(),
        fields: object(fields),
    };
    w.run(put(json!({"url": "https://gw2/"}))).expect("replaced");
    assert_eq!(w.fields(ResourceKind::Gateways, "gw")["auth_value"], sealed);
    assert_eq!(w.fields(ResourceKind::Gateways, "gw")["url"], "https://gw2/");

    // The same state again appends nothing; a GET's output sent back is the same state.
    let mut shown = w.fields(ResourceKind::Gateways, "gw");
    shown.insert("version".into(), json!(7));
    assert_eq!(w.decide(put(Value::Object(shown))).expect("decided"), Vec::<Event>::new());

    // A sealed value from another entity does not open here.
    w.create(
        ResourceKind::Gateways,
        json!({"name": "other", "url": "https://o/", "auth_type": "bearer", "auth_token": "x"}),
    )
    .expect("created");
    let foreign = w.fields(ResourceKind::Gateways, "other")["auth_value"].clone();
    let moved = w.decide(put(json!({"url": "https://gw2/", "auth_type": "bearer", "auth_value": foreign})));
    assert!(moved.expect_err("bound to its entity").message.contains("not sealed for this entity"));

    // PATCH merges; null removes; auth_type null drops the credentials.
    let patch = |p: Value| Command::PatchResource { kind: ResourceKind::Gateways, name: "gw".into(), patch: object(p) };
    w.run(patch(json!({"description": "edge", "transport": "sse"}))).expect("patched");
    assert_eq!(w.fields(ResourceKind::Gateways, "gw")["auth_value"], sealed, "a patch without auth keeps it");
    let events = w.run(patch(json!({"transport": null}))).expect("patched");
    let Event::ResourceUpdated(u) = &events[0] else { panic!("{events:?}") };
    assert_eq!(u.changed, ["transport"]);
    w.run(patch(json!({"auth_type": null}))).expect("patched");
    assert!(w.fields(ResourceKind::Gateways, "gw").get("auth_value").is_none());

    let renamed = w.decide(put(json!({"name": "gw-new", "url": "https://gw/"}))).expect_err("identity is fixed");
    assert!(renamed.message.contains("cannot change"));
    let missing = Command::ReplaceResource { kind: ResourceKind::Gateways, name: "ghost".into(), fields: Map::new() };
    assert_eq!(w.decide(missing).expect_err("absent").kind, RejectionKind::Missing);
}

#[test]
fn references_are_checked_on_write_and_on_delete() {
    let mut w = World::new();
    w.create(ResourceKind::Tools, json!({"name": "t1"})).expect("tool");
    w.create(ResourceKind::Resources, json!({"uri": "file:///doc", "name": "doc"})).expect("resource");
    w.create(
        ResourceKind::Servers,
        json!({"name": "s1", "associated_tools": ["t1"], "associated_resources": ["file:///doc"]}),
    )
    .expect("server");
    let delete = |kind, name: &str| Command::DeleteResource { kind, name: name.into() };
    let refused = w.decide(delete(ResourceKind::Tools, "t1")).expect_err("referenced");
    assert_eq!(refused.kind, RejectionKind::Conflict);
    assert!(refused.message.contains("servers/s1"), "{}", refused.message);
    assert!(w.decide(delete(ResourceKind::Resources, "file:///doc")).is_err());
    w.run(delete(ResourceKind::Servers, "s1")).expect("the server goes first");
    w.run(delete(ResourceKind::Tools, "t1")).expect("then the tool");
    assert!(w.state.resource_entry(ResourceKind::Tools, "t1").is_none());
    assert_eq!(w.decide(delete(ResourceKind::Tools, "t1")).expect_err("gone").kind, RejectionKind::Missing);
}

#[test]
fn an_import_applies_in_dependency_order_whatever_the_document_order() {
    use cfgledger_events::registry_import::{parse_entities, plan, ConflictStrategy, RegistryImport};
    let mut w = World::new();
    // Servers come first in the document, before the tools and prompts they name.
    let doc: Value = serde_json::from_str(
        r#"{"servers": [{"name": "s", "associated_tools": ["t"], "associated_prompts": ["p"]}],
            "prompts": [{"name": "p", "template": "hi"}],
            "tools": [{"name": "t", "auth_type": "bearer", "auth_token": "tk"}]}"#,
    )
    .expect("json");
    let import = RegistryImport { entities: parse_entities(&doc).expect("parses"), strategy: ConflictStrategy::Fail };
    let (plans, events) = plan(&w.state, &TestSealer, &import).expect("references resolve within the import");
    let order: Vec<ResourceKind> = plans.iter().map(|p| p.kind).collect();
    assert_eq!(order, [ResourceKind::Tools, ResourceKind::Prompts, ResourceKind::Servers]);
    let batch = Batch { id: "imp".into(), cause: Cause::Cli { command: "t".into() }, reason: None };
    for (env, rec) in build_batch(w.head, Timestamp(1_800_000_000_000_000), &Actor::system(), &batch, events) {
        w.state.apply(&env);
        w.head = Head { seq: rec.seq, hash: rec.hash };
    }
    assert_eq!(w.credentials(ResourceKind::Tools, "t"), json!({"auth_token": "tk"}));

    // An unresolved reference is reported, never dropped; an unknown kind and a missing name are named.
    let dangling: Value =
        serde_json::from_str(r#"{"servers": [{"name": "s2", "associated_tools": ["ghost"]}]}"#).expect("json");
    let import =
        RegistryImport { entities: parse_entities(&dangling).expect("parses"), strategy: ConflictStrategy::Update };
    assert!(plan(&w.state, &TestSealer, &import).expect_err("unresolved").message.contains("tools/ghost"));
    let widgets = parse_entities(&json!({"widgets": []})).expect_err("unknown kind");
    assert_eq!(widgets.message, "unknown entity type: widgets");
    let nameless = parse_entities(&json!({"tools": [{"name": "ok"}, {"url": "https://x/"}]})).expect_err("no name");
    assert_eq!(nameless.message, "entity 1 in 'tools' missing required field: name");
}
