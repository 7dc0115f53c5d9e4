//! `log import`'s JSON-lines backup: read (every line decoded, hashed and linked) and, when it verifies,
//! restored into an empty in-memory store.
#![no_main]

use cfgledger::store::memory::MemoryStore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(backup) = cfgledger::usecase::clone::read_jsonl(&mut &data[..]) else { return };
    let target = MemoryStore::new();
    let _ = cfgledger::usecase::clone::restore(&target, &backup, &mut |_, _| {});
});
