//! The registry import of a document in MCP Gateway's export layout, planned as a dry run with a source
//! secret, so sealed credentials (AES-GCM `auth_value`s, `v2:` OAuth secrets) are opened.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(mut doc) = serde_json::from_slice::<Value>(data) else { return };
    if let Some(obj) = doc.as_object_mut() {
        // The layout is chosen by the document's fields: keep this target on the gateway's.
        obj.remove("format");
        obj.entry("source_gateway").or_insert_with(|| Value::String("fuzz".into()));
    }
    cfgledger_fuzz::import_dry_run(doc);
});
