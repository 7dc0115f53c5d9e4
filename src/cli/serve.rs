//! `cfgledger serve`: open the store, start the tailer, and serve the REST API until SIGTERM or ctrl-c.

use super::Globals;
use crate::api::{self, AppState};
use crate::error::Error;
use crate::logging::Logging;
use crate::setting_keys;
use crate::tailer::Tailer;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the address is printed).
    #[arg(long, env = "CFGLEDGER_LISTEN", default_value = "127.0.0.1:4444")]
    listen: SocketAddr,
    /// Unconditional catch-up interval of the tailer: the safety net behind change polling.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    safety_poll: Duration,
    /// Interval of keep-alive comments on idle watch streams.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    sse_keepalive: Duration,
    /// Longest a request may take before it is answered 503.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// An extra wake-up channel between instances: redis://HOST[:PORT][/DB]. The log stays the source of
    /// truth; this only makes other instances look sooner.
    #[arg(long, env = "CFGLEDGER_NOTIFY", value_name = "URL")]
    notify: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (the server's certificate first); needs --tls-key.
    #[arg(long, env = "CFGLEDGER_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1); keep it 0600.
    #[arg(long, env = "CFGLEDGER_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How often the rollout driver looks at active rollouts (bakes, health checks); 0 turns it off on this
    /// server (another server of the store then drives them).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    rollout_tick: Duration,
    /// How many of the newest events the server keeps, verified and presented once, for every watch stream
    /// to share; a stream that had caught up and falls further behind than this (a stuck client) is ended
    /// with a reason, and resumes with Last-Event-ID.
    #[arg(long, default_value_t = crate::api::watch_hub::DEFAULT_CAPACITY, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u32).range(16..=1_000_000), |n| n as usize))]
    watch_window: usize,
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    cfgledger_events::value::parse_duration_ms(text)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("expected a duration such as 500ms, 5s or 1m; got {text:?}"))
}

pub fn run(g: &Globals, args: ServeArgs) -> Result<(), Error> {
    // Read before the store opens: a wrong file fails at once, with nothing done.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(api::tls::server_config(cert, key)?),
        _ => None,
    };
    let ledger = g.open_with(true, &[crate::usecase::access::JWT_KEY])?;
    let auth = auth_config(&ledger)?;
    if !auth.required {
        eprintln!(
            "WARNING: AUTH_REQUIRED=false: the admin API accepts requests without a token and gives them every \
             right. Use this for local development only."
        );
    }
    let _tailer = Tailer::spawn(ledger.clone(), args.safety_poll);
    let _notify = args.notify.as_deref().map(|url| crate::notify::start(&ledger, url)).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?;
    runtime.block_on(async move {
        start_logging(&ledger);
        if !auth.required {
            tracing::warn!("AUTH_REQUIRED=false: requests without a token are accepted with every right");
        }
        let metrics = api::metrics::install();
        track_reloads(&ledger);
        // The whole chain is checked from its first event, not only the tail after the newest checkpoint that
        // the open replayed (after logging starts, so that damage found at once is logged): reads are served
        // meanwhile, writes wait for it (`/ready` says `verifying`).
        let _checker = crate::integrity::Checker::spawn(ledger.clone())?;
        // A small store is verified before the first request; a big one starts serving reads while it is.
        ledger.integrity().wait_first_pass(std::time::Duration::from_secs(2));
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| Error::io(format!("cannot listen on {}", args.listen), e))?;
        let addr = listener.local_addr().map_err(|e| Error::io("cannot read the listening address", e))?;
        // Printed on stdout so that scripts and tests learn the port when it was 0.
        let scheme = if tls.is_some() { "https" } else { "http" };
        super::emit(format!("cfgledger listening on {scheme}://{addr}"))?;
        tracing::info!(%addr, store = %ledger.store().describe(), head = ledger.snapshot().head.seq, "serving");
        let (closing_tx, closing) = tokio::sync::watch::channel(false);
        let instance = crate::instance::Instance::new(format!("{scheme}://{addr}"), ledger.now());
        tracing::info!(instance = %instance.id, "instance started");
        let heartbeat = tokio::spawn(crate::instance::run_heartbeat(ledger.clone(), instance.clone(), closing.clone()));
        let _scheduler = tokio::spawn(crate::usecase::governance::run_scheduler(ledger.clone(), closing.clone()));
        let _driver = (!args.rollout_tick.is_zero()).then(|| {
            crate::rollout_driver::spawn(ledger.clone(), instance.id.clone(), args.rollout_tick, closing.clone())
        });
        let beats = crate::instance::BeatRecorder::start(ledger.store().clone());
        let state = AppState::new(api::Shared {
            ledger,
            auth: std::sync::Arc::new(auth),
            limiter: std::sync::Arc::new(api::WriteLimiter::new()),
            login_limits: std::sync::Arc::default(),
            metrics,
            closing,
            sse_keepalive: args.sse_keepalive,
            request_timeout: args.request_timeout,
            instance: std::sync::Arc::new(instance),
            watch_hub: std::sync::Arc::new(crate::api::watch_hub::Hub::new(args.watch_window)),
            beats,
        });
        let served = match tls {
            Some(config) => api::serve_tls(listener, config, state, closing_tx, shutdown_signal()).await,
            None => api::serve(listener, state, closing_tx, shutdown_signal()).await,
        };
        // The heartbeat task removes this instance from the list once `closing` is set.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), heartbeat).await;
        served.map_err(|e| Error::io("server failed", e))
    })
}

fn auth_config(ledger: &crate::Ledger) -> Result<api::AuthConfig, Error> {
    let settings = ledger.settings();
    Ok(api::AuthConfig {
        keys: crate::usecase::access::token_keys(ledger)?,
        ring: Default::default(),
        required: setting_keys::AUTH_REQUIRED.get(&settings),
        token_ttl_secs: setting_keys::TOKEN_EXPIRY.get(&settings).0 / 1000,
        revoked: crate::auth::Revoked::default(),
    })
}

/// Counts the events each publication applied and how long they took to reach this instance (commit
/// time to publication; near zero for this instance's own writes, the propagation delay for others').
fn track_reloads(ledger: &crate::Ledger) {
    let mut published = ledger.subscribe();
    let settings = ledger.settings();
    let clock = ledger.clone();
    let mut last = settings.applied_seq();
    tokio::spawn(async move {
        while published.changed().await.is_ok() {
            let snap = settings.snapshot();
            if snap.head.seq > last {
                metrics::counter!("cfgledger_reload_events_total").increment(snap.head.seq - last);
                let now = clock.now();
                let micros = now.as_micros().saturating_sub(snap.head_time.as_micros()).max(0);
                metrics::histogram!("cfgledger_change_propagation_seconds").record(micros_to_secs(micros));
                last = snap.head.seq;
            }
        }
    });
}

#[allow(clippy::cast_precision_loss)]
fn micros_to_secs(micros: i64) -> f64 {
    micros as f64 / 1e6
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
    (setting_keys::LOG_LEVEL.get(settings), setting_keys::LOG_FORMAT.get(settings))
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
