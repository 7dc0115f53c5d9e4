//! `cfgledger verify`: recompute the whole hash chain from the stored bytes and name the first bad seq.
//!
//! A chain proves every event up to its head, but a log cut short at its end is still a valid, shorter
//! chain. `--anchor SEQ:HASH` (a head printed by an earlier `verify`, kept outside the database) closes that
//! gap: the log must still hold that event with that hash.

use super::{emit, open_existing, Globals};
use crate::error::Error;
use cfgledger_events::{verify_link, ChainError, Hash, Head};
use clap::Args;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A head recorded earlier, as SEQ:HASH; the log must still contain it.
    #[arg(long, value_parser = parse_anchor)]
    anchor: Option<Head>,
}

fn parse_anchor(text: &str) -> Result<Head, String> {
    let (seq, hash) = text.split_once(':').ok_or("expected SEQ:HASH, as printed by verify")?;
    let seq = seq.parse::<u64>().map_err(|_| format!("{seq:?} is not a seq"))?;
    Ok(Head { seq, hash: Hash::from_hex(hash)? })
}

pub fn run(g: &Globals, args: VerifyArgs) -> Result<(), Error> {
    let store = open_existing(g)?;
    let mut head = Head::EMPTY;
    let mut anchor_seen = false;
    loop {
        let records = store.read_after(head.seq, 10_000)?;
        if records.is_empty() {
            break;
        }
        for rec in &records {
            verify_link(&head, rec)?;
            head = Head { seq: rec.seq, hash: rec.hash };
            if let Some(a) = args.anchor.filter(|a| a.seq == rec.seq) {
                if a.hash != rec.hash {
                    return Err(ChainError {
                        seq: rec.seq,
                        reason: format!("the anchor says hash {} but the log has {}", a.hash, rec.hash),
                    }
                    .into());
                }
                anchor_seen = true;
            }
        }
    }
    if let Some(a) = args.anchor.filter(|_| !anchor_seen) {
        return Err(ChainError {
            seq: a.seq,
            reason: format!("the log ends at seq {} before the anchor: events were removed", head.seq),
        }
        .into());
    }
    emit(format!("ok: {} events verified; head {}:{}", head.seq, head.seq, head.hash))
}
