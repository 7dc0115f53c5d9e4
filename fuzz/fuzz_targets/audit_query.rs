//! `GET /admin/config/audit`'s query string, decoded into `AuditFilter` as axum's `Query` does and run
//! against a small in-memory store: a filter, cursor, limit or time that does not parse is a 400, never a
//! panic or an overflow.
#![no_main]

use cfgledger::model::AuditFilter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(filter) = serde_urlencoded::from_bytes::<AuditFilter>(data) else { return };
    let _ = cfgledger::usecase::timetravel::audit(cfgledger_fuzz::ledger(), &filter);
});
