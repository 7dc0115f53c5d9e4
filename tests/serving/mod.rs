//! A `cfgledger serve` child process for the integration tests that start one directly: its URL, read from
//! the `cfgledger listening on http://ADDR` line it prints first, and a kill when it is dropped.

use std::io::{BufRead, BufReader};
use std::process::Child;

pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    /// Takes a spawned `serve --listen 127.0.0.1:0 ...` whose stdout is piped and waits for its URL.
    pub fn from_child(mut child: Child) -> Server {
        let stdout = child.stdout.take().expect("serve's stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("serve prints a first line");
        let url = line
            .trim()
            .strip_prefix("cfgledger listening on ")
            .unwrap_or_else(|| panic!("the listening line, not {line:?}"))
            .to_string();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
