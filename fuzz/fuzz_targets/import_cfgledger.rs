//! The registry import of a document in cfgledger's own layout (`GET /export`'s), planned as a dry run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(mut doc) = serde_json::from_slice::<Value>(data) else { return };
    if let Some(obj) = doc.as_object_mut() {
        // The layout is chosen by the document's fields: keep this target on cfgledger's.
        obj.insert("format".into(), Value::String("cfgledger-export".into()));
    }
    cfgledger_fuzz::import_dry_run(doc);
});
