//! `Envelope::decode`, which every record read from a store or a backup passes through: any bytes must
//! decode or be refused, never panic.
#![no_main]

use cfgledger_events::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::decode(data) {
        // What decoded must name its subject and kind without panicking too: the store indexes both.
        let _ = env.event.subject();
        let _ = env.event.kind();
    }
});
