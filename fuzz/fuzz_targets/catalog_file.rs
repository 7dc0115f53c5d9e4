//! `--catalog FILE` as JSON or TOML (the first byte chooses), applied to the built-in catalog: a file is
//! loaded or refused with a message, never panics.
#![no_main]

use cfgledger_events::builtin::builtin;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static BUILTIN: OnceLock<cfgledger_events::Catalog> = OnceLock::new();
    let Some((first, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let catalog = BUILTIN.get_or_init(builtin);
    let _ = cfgledger::catalog_file::apply_text(catalog, "fuzz", text, first & 1 == 1);
});
