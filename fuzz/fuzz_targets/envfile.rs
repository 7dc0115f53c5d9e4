//! The `.env` parser (python-dotenv's syntax, with `${VAR}` expansion): any text parses or is refused with
//! its bad lines, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = cfgledger::envfile::parse("fuzz.env", text);
});
