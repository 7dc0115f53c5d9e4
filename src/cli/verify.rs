//! `cfgledger verify`: recompute the whole hash chain from the stored bytes and name the first bad seq.
//!
//! A chain proves every event up to its head, but a log cut short at its end is still a valid, shorter
//! chain. `--anchor SEQ:HASH` (a head printed by an earlier `verify`, kept outside the database) closes that
//! gap: the log must still hold that event with that hash. The checkpoints are compared with the replay too.

use super::{emit, open_existing, Globals};
use crate::error::Error;
use cfgledger_events::{Hash, Head};
use clap::Args;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A head recorded earlier, as SEQ:HASH; the log must still contain it.
    #[arg(long, value_parser = parse_anchor)]
    anchor: Option<Head>,
    /// Delete the checkpoints that do not match the log (they are rebuilt; only speed depends on them).
    #[arg(long)]
    drop_bad_snapshots: bool,
}

fn parse_anchor(text: &str) -> Result<Head, String> {
    let (seq, hash) = text.split_once(':').ok_or("expected SEQ:HASH, as printed by verify")?;
    let seq = seq.parse::<u64>().map_err(|_| format!("{seq:?} is not a seq"))?;
    Ok(Head { seq, hash: Hash::from_hex(hash)? })
}

pub fn run(g: &Globals, args: VerifyArgs) -> Result<(), Error> {
    let store = open_existing(g)?;
    let report = crate::usecase::verify::verify(store.as_ref(), args.anchor)?;
    let head = report.head;
    if args.drop_bad_snapshots {
        for (seq, _) in &report.snapshots_bad {
            store.delete_snapshot(*seq)?;
        }
    }
    for (seq, why) in &report.snapshots_bad {
        let done = if args.drop_bad_snapshots { "dropped" } else { "drop it with --drop-bad-snapshots" };
        eprintln!("snapshot at seq {seq} is bad: {why}; {done}");
    }
    if report.ok() || args.drop_bad_snapshots {
        emit(format!("ok: {} events verified; head {}:{}", head.seq, head.seq, head.hash))?;
        match report.snapshots_ok.len() {
            0 => Ok(()),
            n => emit(format!("ok: {n} snapshots match the log")),
        }
    } else {
        Err(Error::Integrity(format!(
            "the log verifies ({} events; head {}:{}) but {} snapshot(s) do not match it",
            head.seq,
            head.seq,
            head.hash,
            report.snapshots_bad.len()
        )))
    }
}
