//! The REST API (and the web UI) served from inside a bench's own process on a loopback port, with
//! authentication on, so a bench measures the server's code over HTTP without a child process.

use cfgledger::api::{self, AppState, AuthConfig, WriteLimiter};
use cfgledger::auth::TokenKeys;
use cfgledger::Ledger;
use std::sync::Arc;
use std::time::Duration;

/// Serves `ledger` with tokens signed by `keys`; returns the base URL and the switch that stops it.
pub fn serve(
    rt: &tokio::runtime::Runtime,
    ledger: Ledger,
    keys: TokenKeys,
    request_timeout: Duration,
) -> (String, tokio::sync::watch::Sender<bool>) {
    let (closing, closed) = tokio::sync::watch::channel(false);
    let beats = cfgledger::instance::BeatRecorder::start(ledger.store().clone());
    let state = AppState::new(api::Shared {
        ledger,
        auth: Arc::new(AuthConfig {
            keys,
            ring: Default::default(),
            required: true,
            token_ttl_secs: 3600,
            revoked: Default::default(),
        }),
        limiter: Arc::new(WriteLimiter::new()),
        login_limits: Arc::default(),
        metrics: None,
        closing: closed,
        sse_keepalive: Duration::from_secs(15),
        request_timeout,
        instance: Arc::new(cfgledger::instance::Instance::new("bench".into(), cfgledger_events::Timestamp(0))),
        watch_hub: Arc::new(cfgledger::api::watch_hub::Hub::new(cfgledger::api::watch_hub::DEFAULT_CAPACITY)),
        beats,
    });
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let stop = closing.clone();
    rt.spawn(async move {
        let mut done = stop.subscribe();
        let _ = api::serve(listener, state, stop, async move {
            let _ = done.changed().await;
        })
        .await;
    });
    (url, closing)
}
