//! Follow a namespace and print each change: a complete application of `cfgledger-client`.
//!
//! ```sh
//! export CFGLEDGER_TOKEN=$(cfgledger token issue --sub my-app --role config_reader --ttl 30d)
//! cargo run -p cfgledger-client --example follow -- http://127.0.0.1:4444 mcpgateway /tmp/my-app.cache.json
//! ```
//!
//! It starts from the server, or from the sealed cache when the server cannot be reached (and says so),
//! reads two settings through the typed getters, prints each change with whether it needs a restart, and
//! every five seconds says how stale its configuration may be. Stop it with Ctrl-C.

use cfgledger_client::{Client, Origin};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let server = args.next().unwrap_or_else(|| "http://127.0.0.1:4444".into());
    let namespace = args.next().unwrap_or_else(|| "mcpgateway".into());
    let cache = args.next().unwrap_or_else(|| format!("/tmp/cfgledger-example-{namespace}.cache.json"));

    let client = Client::builder(&server, &namespace)
        // The token from the environment, never the command line; read again at every reconnection.
        .token_env("CFGLEDGER_TOKEN")
        .cache(&cache)
        .label("app", "example")
        .start()?;

    let snap = client.snapshot();
    match snap.origin {
        Origin::Server => println!("{namespace} at seq {} from {server}: {} keys", snap.seq, snap.values.len()),
        Origin::Cache => println!("server unreachable: started from the cache {cache} at seq {}", snap.seq),
    }
    // Typed getters read the lock-free snapshot; a key the store does not set is `None`, and the application
    // keeps its own default.
    let level = snap.str("LOG_LEVEL").unwrap_or("INFO").to_string();
    let port: u16 = snap.get("PORT")?.unwrap_or(4444);
    println!("LOG_LEVEL={level} PORT={port}");

    client.on_change(|change| {
        let what = if change.restart_required { "takes effect at the next restart" } else { "applies now" };
        println!("seq {}: {} changed ({what})", change.current.seq, change.keys.join(", "));
    });

    loop {
        std::thread::sleep(Duration::from_secs(5));
        match client.staleness() {
            None => println!("current at seq {}", client.status().seq),
            Some(age) => {
                println!("stale for {:.0} s: {}", age.as_secs_f64(), client.status().error.unwrap_or_default())
            }
        }
    }
}
