//! Redis Pub/Sub as an optional extra wake-up channel (`serve --notify redis://...`), for deployments where
//! PostgreSQL `LISTEN` is unavailable (behind a transaction-pooling proxy) or for SQLite instances that
//! should not wait for their next poll. Each commit publishes the new head seq on `cfgledger:<store id>`;
//! each instance subscribes and, on a message, catches up from the log. A message only wakes: the log stays
//! the source of truth, so a lost message costs latency, never an event. Both sides reconnect with backoff.

use crate::error::Error;
use crate::ledger::Ledger;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a subscriber blocks on its socket before it looks at the stop flag.
const READ_SLICE: Duration = Duration::from_millis(250);

/// The running publisher and subscriber; stops both when dropped.
pub struct RedisNotify {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for RedisNotify {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Starts publishing this process's commits and listening for everyone's. The URL is checked at once; the
/// server may be down (both sides retry).
pub fn start(ledger: &Ledger, url: &str) -> Result<RedisNotify, Error> {
    let client = redis::Client::open(url).map_err(|e| Error::input_from(format!("--notify {}", redact(url)), e))?;
    let store_id = ledger.snapshot().state.store.as_ref().map(|s| s.store_id.clone()).unwrap_or_default();
    let channel = format!("cfgledger:{store_id}");
    let stop = Arc::new(AtomicBool::new(false));

    let (tx, rx) = mpsc::channel::<u64>();
    if !ledger.on_commit(move |seq| {
        let _ = tx.send(seq);
    }) {
        return Err(Error::Internal { context: "a commit hook is already installed".into(), source: None });
    }
    let publisher = {
        let (client, channel, stop) = (client.clone(), channel.clone(), stop.clone());
        std::thread::Builder::new()
            .name("cfgledger-redis-pub".into())
            .spawn(move || publish(client, channel, rx, stop))
            .map_err(|e| Error::io("cannot start the Redis publisher", e))?
    };
    let subscriber = {
        let (ledger, stop) = (ledger.clone(), stop.clone());
        std::thread::Builder::new()
            .name("cfgledger-redis-sub".into())
            .spawn(move || subscribe(client, channel, ledger, stop))
            .map_err(|e| Error::io("cannot start the Redis subscriber", e))?
    };
    Ok(RedisNotify { stop, threads: vec![publisher, subscriber] })
}

fn redact(url: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| rest.rsplit_once('@').map(|(_, host)| (scheme, host))) {
        Some((scheme, host)) => format!("{scheme}://…@{host}"),
        None => url.to_string(),
    }
}

fn publish(client: redis::Client, channel: String, commits: mpsc::Receiver<u64>, stop: Arc<AtomicBool>) {
    let mut conn: Option<redis::Connection> = None;
    let mut backoff = Duration::from_millis(100);
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut seq) = commits.recv_timeout(READ_SLICE) else { continue };
        // A burst of commits needs one message: the newest head.
        while let Ok(newer) = commits.try_recv() {
            seq = seq.max(newer);
        }
        if conn.is_none() {
            match client.get_connection_with_timeout(Duration::from_secs(1)) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot reach Redis to publish; the log still holds the change");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH").arg(&channel).arg(seq).query(c);
            match sent {
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::debug!(error = %e, "Redis publish failed; reconnecting");
                    conn = None;
                }
            }
        }
    }
}

fn subscribe(client: redis::Client, channel: String, ledger: Ledger, stop: Arc<AtomicBool>) {
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let mut conn = match client.get_connection_with_timeout(Duration::from_secs(1)) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "cannot reach Redis to subscribe; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if conn.set_read_timeout(Some(READ_SLICE)).is_err() {
            continue;
        }
        let mut pubsub = conn.as_pubsub();
        if let Err(e) = pubsub.subscribe(&channel) {
            tracing::debug!(error = %e, "Redis subscribe failed; retrying");
            continue;
        }
        backoff = Duration::from_millis(100);
        if !first {
            metrics::counter!("cfgledger_reconnects_total", "channel" => "redis").increment(1);
            // Messages sent while away are lost: the log is read instead.
            let _ = ledger.catch_up();
        }
        first = false;
        while !stop.load(Ordering::Relaxed) {
            match pubsub.get_message() {
                Ok(_) => {
                    metrics::counter!("cfgledger_notifications_received_total", "channel" => "redis").increment(1);
                    if let Err(e) = ledger.catch_up() {
                        tracing::warn!(error = %e, "catch-up after a Redis notification failed");
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(e) => {
                    tracing::debug!(error = %e, "the Redis subscription broke; reconnecting");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(super::redact("redis://:hunter2@cache:6379/0"), "redis://…@cache:6379/0");
        assert_eq!(super::redact("redis://cache:6379"), "redis://cache:6379");
    }
}
