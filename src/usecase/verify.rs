//! Verification of a whole store, shared by `cfgledger verify` and `GET /admin/verify`: every hash of the
//! chain recomputed from the stored bytes, every envelope decoded and folded, an optional anchor (a head
//! recorded earlier, which the log must still hold), and every checkpoint compared with the state the
//! replay reaches at its seq.

use crate::error::Error;
use crate::store::{EventStore, LogChunks};
use cfgledger_events::chain::ChainVerifier;
use cfgledger_events::{ChainError, Head};
use cfgledger_projections::SettingsState;

/// What a verification found. A broken chain is an error, not a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub head: Head,
    /// Checkpoints that match the replay.
    pub snapshots_ok: Vec<u64>,
    /// Checkpoints that do not, with why: reads ignore those whose digest fails, but one that passes its
    /// digest and still differs from the replay was written by something other than this program.
    pub snapshots_bad: Vec<(u64, String)>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.snapshots_bad.is_empty()
    }
}

/// Verifies the chain (and the anchor) and the checkpoints.
pub fn verify(store: &dyn EventStore, anchor: Option<Head>) -> Result<Report, Error> {
    verify_paced(store, anchor, &mut |_| true)?
        .ok_or_else(|| Error::Internal { context: "a verification without a pace stopped".into(), source: None })
}

/// [`verify`], calling `pace` with the seq reached after each chunk of records: it may sleep to hold a pace,
/// and stops the walk by returning false (`Ok(None)`). The server's background check runs this way.
pub fn verify_paced(
    store: &dyn EventStore,
    anchor: Option<Head>,
    pace: &mut dyn FnMut(u64) -> bool,
) -> Result<Option<Report>, Error> {
    let snapshot_seqs = store.snapshot_seqs()?;
    let mut wanted = snapshot_seqs.iter().copied().peekable();
    let mut report = Report { head: Head::EMPTY, snapshots_ok: Vec::new(), snapshots_bad: Vec::new() };
    let mut state = SettingsState::new();
    let mut anchor_seen = false;
    let mut chain = ChainVerifier::new(Head::EMPTY);
    for records in LogChunks::after(store, 0) {
        let records = records?;
        for rec in &records {
            let env = chain.push_decoded(rec)?;
            state.apply(&env);
            report.head = chain.head();
            if let Some(a) = anchor.filter(|a| a.seq == rec.seq) {
                if a.hash != rec.hash {
                    let reason = format!("the anchor says hash {} but the log has {}", a.hash, rec.hash);
                    return Err(ChainError { seq: rec.seq, reason }.into());
                }
                anchor_seen = true;
            }
            while wanted.peek().is_some_and(|s| *s <= rec.seq) {
                let seq = wanted.next().unwrap_or_default();
                if seq == rec.seq {
                    check_snapshot(store, seq, &state, &mut report)?;
                }
            }
        }
        if !pace(report.head.seq) {
            return Ok(None);
        }
    }
    for seq in wanted {
        report.snapshots_bad.push((seq, format!("it stands beyond the log's head, seq {}", report.head.seq)));
    }
    if let Some(a) = anchor.filter(|_| !anchor_seen) {
        let reason = format!("the log ends at seq {} before the anchor: events were removed", report.head.seq);
        return Err(ChainError { seq: a.seq, reason }.into());
    }
    Ok(Some(report))
}

fn check_snapshot(
    store: &dyn EventStore,
    seq: u64,
    replayed: &SettingsState,
    report: &mut Report,
) -> Result<(), Error> {
    let Some(stored) = store.load_snapshot(seq)?.filter(|s| s.seq == seq) else {
        // Deleted meanwhile: nothing to check.
        return Ok(());
    };
    match crate::ledger::history::check(store, &stored) {
        // An older build's checkpoint: unused and rebuilt, nothing wrong.
        Err(_) if crate::ledger::history::obsolete(&stored) => {}
        Err(why) => report.snapshots_bad.push((seq, why)),
        Ok((state, _)) if &state != replayed => {
            report.snapshots_bad.push((seq, "its state differs from the replay of the log".into()));
        }
        Ok(_) => report.snapshots_ok.push(seq),
    }
    Ok(())
}
