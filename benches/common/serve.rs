//! The address a `cfgledger serve` started by a bench listens on: the first line of its standard output
//! (`cfgledger listening on http://ADDR`), after which a thread drains the output so the server never
//! blocks writing it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::ChildStdout;
use std::time::Duration;

/// The server's address, or `Err(None)` when it printed nothing within a minute (the caller points at its
/// log), or `Err(Some(line))` when its first line is not the address.
pub fn listen_address(stdout: ChildStdout) -> Result<SocketAddr, Option<String>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    let line = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Some(Ok(line))) => line,
        _ => return Err(None),
    };
    line.strip_prefix("cfgledger listening on http://").and_then(|a| a.trim().parse().ok()).ok_or(Some(line))
}
