//! `cfgledger serve`: open the store, start the tailer, and serve the REST API until SIGTERM or ctrl-c.

use super::Globals;
use crate::api::{self, AppState};
use crate::error::Error;
use crate::logging::Logging;
use crate::tailer::Tailer;
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the address is printed).
    #[arg(long, env = "CFGLEDGER_LISTEN", default_value = "127.0.0.1:4444")]
    listen: SocketAddr,
    /// Unconditional catch-up interval of the tailer: the safety net behind change polling.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    safety_poll: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    cfgledger_events::value::parse_duration_ms(text)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("expected a duration such as 500ms, 5s or 1m; got {text:?}"))
}

pub fn run(g: &Globals, args: ServeArgs) -> Result<(), Error> {
    let ledger = g.open_with(true)?;
    let _tailer = Tailer::spawn(ledger.clone(), args.safety_poll);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        start_logging(&ledger);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| Error::Io(format!("cannot listen on {}: {e}", args.listen)))?;
        let addr = listener.local_addr().map_err(|e| Error::Io(e.to_string()))?;
        // Printed on stdout so that scripts and tests learn the port when it was 0.
        super::emit(format!("cfgledger listening on http://{addr}"))?;
        tracing::info!(%addr, store = %ledger.store().describe(), head = ledger.snapshot().head.seq, "serving");
        api::serve(listener, AppState { ledger }, shutdown_signal())
            .await
            .map_err(|e| Error::Io(format!("server failed: {e}")))
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// The store's `LOG_LEVEL` and `LOG_FORMAT`, with their defaults.
fn log_settings(settings: &crate::Settings) -> (String, String) {
    (
        settings.get_string("LOG_LEVEL").unwrap_or_else(|| "info".into()),
        settings.get_string("LOG_FORMAT").unwrap_or_else(|| "json".into()),
    )
}

/// Structured logs on stderr at the store's `LOG_LEVEL`, in its `LOG_FORMAT`, following their changes:
/// a task wakes on every published state and reloads the subscriber when either setting differs.
fn start_logging(ledger: &crate::Ledger) {
    let settings = ledger.settings();
    let (level, format) = log_settings(&settings);
    let Some(mut logging) = Logging::init(&level, &format) else {
        return;
    };
    let mut published = ledger.subscribe();
    tokio::spawn(async move {
        while published.changed().await.is_ok() {
            let (level, format) = log_settings(&settings);
            logging.apply(&level, &format);
        }
    });
}
