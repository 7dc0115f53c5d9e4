//! The follower: the first render (or the cache), the watch-stream tail on its own thread, renders on
//! change, the cache, staleness, and heartbeats.

use crate::cache::{self, CacheKey, Cached};
use crate::snapshot::{Origin, Snapshot};
use crate::sse::{SseEvent, SseReader};
use crate::wire::{ChangeNotice, InstanceReport, WatchProgress};
use crate::{Options, StartError};
use arc_swap::ArcSwap;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// One change of the configuration, as callbacks see it.
#[derive(Debug, Clone)]
pub struct Change {
    pub previous: Arc<Snapshot>,
    pub current: Arc<Snapshot>,
    /// The keys whose values differ, sorted.
    pub keys: Vec<String>,
    /// Whether a key that changed takes effect only at the application's restart, or the follower cannot
    /// tell (it reconnected, or started from the cache, and the render changed with no event to explain it).
    pub restart_required: bool,
}

/// What the follower knows about its own freshness.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The watch stream is open.
    pub connected: bool,
    /// The configuration may be out of date: the server cannot be reached, or refuses the token.
    pub stale: bool,
    /// When the configuration was last known to be current, while stale.
    pub stale_since: Option<SystemTime>,
    /// The seq and hash the configuration is known to answer for (a render's, or a later `progress`).
    pub seq: u64,
    pub head_hash: String,
    /// The last problem met, while it lasts.
    pub error: Option<String>,
    /// Connections opened after a break (or after starting from the cache).
    pub reconnects: u64,
}

type Callback = Arc<dyn Fn(&Change) + Send + Sync>;
type ReportHook = Box<dyn Fn(&mut InstanceReport) + Send + Sync>;

struct Shared {
    options: Options,
    http: Http,
    key: Option<CacheKey>,
    snapshot: ArcSwap<Snapshot>,
    status: Mutex<Status>,
    callbacks: Mutex<Vec<Callback>>,
    report_hook: Mutex<Option<ReportHook>>,
    stop: AtomicBool,
    beat: Mutex<Option<mpsc::Sender<()>>>,
    instance_id: String,
    started_at: String,
    host: String,
    /// What the application last said of its health ([`Client::set_healthy`]).
    healthy: Mutex<Option<bool>>,
}

/// A followed namespace. Cheap to clone; the follower stops when the last clone is dropped or on
/// [`Client::stop`].
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    _guard: Arc<StopOnDrop>,
}

struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
        self.0.wake_beat();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.shared.options.server)
            .field("namespace", &self.shared.options.namespace)
            .field("seq", &self.shared.snapshot.load().seq)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Options for following `namespace` on `server`.
    pub fn builder(server: &str, namespace: &str) -> crate::Builder {
        crate::Builder { options: Options::new(server, namespace) }
    }

    /// Renders the namespace (or, when the server cannot be reached, opens the cache) and starts the
    /// follower and heartbeat threads.
    pub fn start(options: Options) -> Result<Client, StartError> {
        let client = Client::load(options)?;
        let follower = client.shared.clone();
        std::thread::Builder::new()
            .name("cfgledger-follow".into())
            .spawn(move || follow(follower))
            .map_err(|e| StartError::Unavailable(format!("cannot start the follower thread: {e}")))?;
        if let Some(every) = client.shared.options.heartbeat {
            let (tx, rx) = mpsc::channel();
            *client.shared.beat.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
            let beater = client.shared.clone();
            std::thread::Builder::new()
                .name("cfgledger-heartbeat".into())
                .spawn(move || heartbeat(beater, rx, every))
                .map_err(|e| StartError::Unavailable(format!("cannot start the heartbeat thread: {e}")))?;
        }
        Ok(client)
    }

    /// The first configuration only: a render, or the cache when the server cannot be reached. Nothing
    /// follows and nothing beats (`agent exec --once`).
    pub fn load(mut options: Options) -> Result<Client, StartError> {
        // The id is known before the first render: a rollout serves its values by instance id and labels.
        if options.instance_id.is_none() {
            options.instance_id = Some(random_id());
        }
        let key = match &options.cache {
            Some(path) => {
                let key_path = options.cache_key_file.clone().unwrap_or_else(|| cache::default_key_path(path));
                Some(CacheKey::resolve(&key_path).map_err(StartError::Cache)?)
            }
            None => None,
        };
        let http = Http::new(&options).map_err(StartError::Config)?;
        let (snapshot, status) = match http.render(&options) {
            Ok(snap) => {
                let status = Status {
                    connected: false,
                    stale: false,
                    stale_since: None,
                    seq: snap.seq,
                    head_hash: snap.head_hash.clone(),
                    error: None,
                    reconnects: 0,
                };
                (snap, status)
            }
            Err(Fetch::Refused(m) | Fetch::Reset(m)) => return Err(StartError::Refused(m)),
            // No cache to fall back on: a refused token is the operator's to fix, not an outage to wait out.
            Err(Fetch::Unauthorized(m)) if options.cache.is_none() || options.require_fresh => {
                return Err(StartError::Refused(format!(
                    "{m}; give a token of role config_reader in CFGLEDGER_TOKEN or a token file"
                )))
            }
            Err(Fetch::Retry(m) | Fetch::Unauthorized(m)) => {
                if options.require_fresh {
                    return Err(StartError::Unavailable(format!(
                        "{m}; a fresh configuration is required, so the cache is not used"
                    )));
                }
                let (Some(path), Some(key)) = (&options.cache, &key) else {
                    return Err(StartError::Unavailable(format!("{m}; and no cache is configured to start from")));
                };
                let cached = match cache::read(path, key, &options.namespace, &options.profile()) {
                    Ok(Some(c)) => c,
                    Ok(None) => {
                        return Err(StartError::Unavailable(format!(
                            "{m}; and there is no cache at {} to start from",
                            path.display()
                        )))
                    }
                    Err(e) => return Err(StartError::Cache(format!("{m}; and the cache cannot be used: {e}"))),
                };
                let written = cfgledger_events::Timestamp::parse_rfc3339(&cached.written_at)
                    .ok()
                    .and_then(|t| u64::try_from(t.as_micros()).ok())
                    .map(|us| SystemTime::UNIX_EPOCH + Duration::from_micros(us))
                    .unwrap_or_else(crate::clock::now);
                tracing::warn!(
                    seq = cached.seq,
                    written_at = %cached.written_at,
                    cache = %path.display(),
                    error = %m,
                    "the configuration could not be fetched from the server: starting from the last-known-good cache"
                );
                let status = Status {
                    connected: false,
                    stale: true,
                    stale_since: Some(written),
                    seq: cached.seq,
                    head_hash: cached.head_hash.clone(),
                    error: Some(m),
                    reconnects: 0,
                };
                let snap = Snapshot {
                    namespace: cached.namespace,
                    seq: cached.seq,
                    head_hash: cached.head_hash,
                    values: cached.values,
                    origin: Origin::Cache,
                    received_at: written,
                };
                (snap, status)
            }
        };
        let shared = Arc::new(Shared {
            instance_id: options.instance_id.clone().unwrap_or_else(random_id),
            started_at: crate::clock::now_rfc3339(),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            options,
            http,
            key,
            snapshot: ArcSwap::from_pointee(snapshot),
            status: Mutex::new(status),
            callbacks: Mutex::new(Vec::new()),
            report_hook: Mutex::new(None),
            stop: AtomicBool::new(false),
            beat: Mutex::new(None),
            healthy: Mutex::new(None),
        });
        if shared.snapshot.load().origin == Origin::Server {
            shared.write_cache();
        }
        Ok(Client { _guard: Arc::new(StopOnDrop(shared.clone())), shared })
    }

    /// The configuration now. Lock-free: a reader never waits for the follower.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    /// Calls `f` on the follower's thread after each change, with the snapshot before and after.
    pub fn on_change(&self, f: impl Fn(&Change) + Send + Sync + 'static) {
        self.shared.callbacks.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::new(f));
    }

    /// How long the configuration may have been out of date: `None` while the follower is connected and
    /// current; otherwise the time since it was last known to be current.
    pub fn staleness(&self) -> Option<Duration> {
        let status = self.status();
        if !status.stale {
            return None;
        }
        Some(status.stale_since.map(crate::clock::since).unwrap_or_default())
    }

    pub fn status(&self) -> Status {
        self.shared.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The id heartbeats report.
    pub fn instance_id(&self) -> &str {
        &self.shared.instance_id
    }

    /// Lets the caller amend each heartbeat (an agent adds its child's state).
    pub fn set_report_hook(&self, f: impl Fn(&mut InstanceReport) + Send + Sync + 'static) {
        *self.shared.report_hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(f));
    }

    /// Keeps `snap` as the last-known-good configuration in the cache instead of the newest: an agent whose
    /// child failed with the newest one starts from the one that worked.
    pub fn remember(&self, snap: &Snapshot) {
        self.shared.cache_snapshot(snap);
    }

    /// The application's word on its own health, sent with every heartbeat from now on (at once, too): a
    /// rollout that watches instance reports rolls back when an instance running its values says `false`.
    pub fn set_healthy(&self, healthy: Option<bool>) {
        *self.shared.healthy.lock().unwrap_or_else(|e| e.into_inner()) = healthy;
        self.shared.wake_beat();
    }

    /// Sends a heartbeat now rather than at the next interval.
    pub fn beat_now(&self) {
        self.shared.wake_beat();
    }

    /// The heartbeat as it would be sent now.
    pub fn report(&self) -> InstanceReport {
        self.shared.report()
    }

    /// Stops following (the threads end at their next wake-up).
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake_beat();
    }
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn wake_beat(&self) {
        if let Some(tx) = self.beat.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(());
        }
    }

    fn with_status(&self, f: impl FnOnce(&mut Status)) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s);
    }

    /// The stream is down or the server refused: the configuration may be out of date from now on.
    fn set_stale(&self, error: String) {
        let mut newly = false;
        self.with_status(|s| {
            s.connected = false;
            if !s.stale {
                s.stale = true;
                s.stale_since = Some(crate::clock::now());
                newly = true;
            }
            s.error = Some(error.clone());
        });
        if newly {
            tracing::warn!(server = %self.options.server, error = %error, "configuration may be stale: following again with backoff");
            self.wake_beat();
        } else {
            tracing::debug!(error = %error, "still cannot follow");
        }
    }

    fn set_fresh(&self) {
        let mut was_stale = false;
        self.with_status(|s| {
            was_stale = s.stale;
            s.connected = true;
            s.stale = false;
            s.stale_since = None;
            s.error = None;
        });
        if was_stale {
            tracing::info!(server = %self.options.server, "following the server again");
            self.wake_beat();
        }
    }

    fn advance(&self, seq: u64, hash: &str) {
        self.with_status(|s| {
            if seq >= s.seq {
                s.seq = seq;
                s.head_hash = hash.to_string();
            }
        });
    }

    fn write_cache(&self) {
        self.cache_snapshot(&self.snapshot.load());
    }

    fn cache_snapshot(&self, snap: &Snapshot) {
        let (Some(path), Some(key)) = (&self.options.cache, &self.key) else { return };
        let cached = Cached {
            namespace: snap.namespace.clone(),
            profile: self.options.profile(),
            server: self.options.server.clone(),
            seq: snap.seq,
            head_hash: snap.head_hash.clone(),
            written_at: crate::clock::now_rfc3339(),
            values: snap.values.clone(),
        };
        if let Err(e) = cache::write(path, key, &cached) {
            tracing::warn!(error = %e, "cannot write the last-known-good cache");
        }
    }

    /// Renders again and publishes the result when it differs; calls back for a change of values.
    /// `Ok(false)` when the render is older than what the follower has heard of (`newest`, a change event's
    /// seq) or holds (a server of the fleet that lags): nothing is published, and the caller tries again.
    fn refresh(&self, restart_hint: bool, newest: u64, reset: bool) -> Result<bool, Fetch> {
        let fresh = self.http.render(&self.options)?;
        let old = self.snapshot.load_full();
        if fresh.seq < newest || (!reset && old.origin == Origin::Server && fresh.seq < old.seq) {
            tracing::debug!(
                render = fresh.seq,
                newest,
                held = old.seq,
                "the render is older than what the follower knows; retrying"
            );
            return Ok(false);
        }
        self.advance(fresh.seq, &fresh.head_hash);
        let keys = old.changed_keys(&fresh);
        if keys.is_empty() && old.origin == Origin::Server && fresh.seq == old.seq {
            return Ok(true);
        }
        let current = Arc::new(fresh);
        self.snapshot.store(current.clone());
        if !keys.is_empty() || old.origin == Origin::Cache {
            self.write_cache();
        }
        if keys.is_empty() {
            return Ok(true);
        }
        tracing::info!(seq = current.seq, keys = keys.len(), restart_required = restart_hint, "configuration changed");
        let change = Change { previous: old, current, keys, restart_required: restart_hint };
        let callbacks: Vec<Callback> = self.callbacks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for cb in callbacks {
            cb(&change);
        }
        self.wake_beat();
        Ok(true)
    }

    fn report(&self) -> InstanceReport {
        let status = self.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let snap = self.snapshot.load();
        let staleness =
            status.stale.then(|| status.stale_since.map(|t| crate::clock::since(t).as_secs_f64()).unwrap_or_default());
        let mut report = InstanceReport {
            id: self.instance_id.clone(),
            kind: self.options.kind.clone(),
            namespace: self.options.namespace.clone(),
            labels: self.options.labels.clone(),
            applied_seq: status.seq,
            head_hash: status.head_hash.clone(),
            stale: status.stale,
            staleness_secs: Some(staleness.unwrap_or(0.0)),
            origin: snap.origin.as_str().to_string(),
            host: self.host.clone(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: self.started_at.clone(),
            child: None,
            error: status.error.as_deref().map(printable),
            healthy: *self.healthy.lock().unwrap_or_else(|e| e.into_inner()),
        };
        if let Some(hook) = self.report_hook.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            hook(&mut report);
        }
        report
    }
}

/// Why a request failed: worth retrying (the server is down, busy, or refused the token, which a rotated
/// token file may fix), or not (a request that will never be accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fetch {
    Retry(String),
    Refused(String),
    /// The server's log does not reach the seq the follower resumes after (another store, or one restored
    /// from a backup): start over from its head.
    Reset(String),
    /// The token was refused (401): expired, or of another store. Retried, since a rotated token file
    /// fixes it, but said loudly.
    Unauthorized(String),
}

struct Http {
    base: String,
    requests: ureq::Agent,
    stream: ureq::Agent,
    token: crate::TokenSource,
}

impl Http {
    fn new(options: &Options) -> Result<Http, String> {
        let agent = |builder: ureq::AgentBuilder| {
            crate::tls::agent_builder(builder, &options.server, options.ca_file.as_deref()).map(|b| b.build())
        };
        let requests =
            agent(ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(5)).timeout(options.request_timeout))?;
        let stream = agent(
            ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(5)).timeout_read(options.read_timeout),
        )?;
        Ok(Http { base: options.server.clone(), requests, stream, token: options.token.clone() })
    }

    fn authorize(&self, req: ureq::Request) -> Result<ureq::Request, Fetch> {
        let req = req.set("X-Cfgledger-Client", "agent");
        match self.token.read() {
            Ok(Some(t)) => Ok(req.set("Authorization", &format!("Bearer {t}"))),
            Ok(None) => Ok(req),
            Err(e) => Err(Fetch::Retry(e)),
        }
    }

    fn render(&self, options: &Options) -> Result<Snapshot, Fetch> {
        let mut req = self
            .requests
            .get(&format!("{}/admin/config/render", self.base))
            .query("format", "json")
            .query("namespace", &options.namespace);
        if options.include_secrets {
            req = req.query("include_secrets", "true");
        }
        if options.include_defaults {
            req = req.query("include_defaults", "true");
        }
        if let Some(reason) = &options.reason {
            req = req.query("reason", reason);
        }
        // Who is asking, so that a rollout's values reach the instances meant to have them.
        if let Some(id) = &options.instance_id {
            req = req.query("instance", id);
        }
        if !options.labels.is_empty() {
            let labels = serde_json::to_string(&options.labels).unwrap_or_default();
            req = req.query("labels", &labels);
        }
        let resp = self.authorize(req)?.call().map_err(|e| failure(&self.base, "render", e))?;
        let seq = resp.header("x-cfgledger-seq").and_then(|s| s.parse::<u64>().ok());
        let hash = resp.header("x-cfgledger-head-hash").map(str::to_string);
        let (Some(seq), Some(head_hash)) = (seq, hash) else {
            return Err(Fetch::Refused(format!(
                "{} answered a render without X-Cfgledger-Seq and X-Cfgledger-Head-Hash: is it a cfgledger server of this version?",
                self.base
            )));
        };
        let values: Map<String, Value> = resp
            .into_json()
            .map_err(|e| Fetch::Retry(format!("the render from {} did not arrive whole: {e}", self.base)))?;
        Ok(Snapshot {
            namespace: options.namespace.clone(),
            seq,
            head_hash,
            values,
            origin: Origin::Server,
            received_at: crate::clock::now(),
        })
    }

    /// Opens the watch stream of the namespace's settings, resuming after `cursor`.
    fn watch(&self, namespace: &str, cursor: Option<u64>) -> Result<ureq::Response, Fetch> {
        let mut req = self
            .stream
            .get(&format!("{}/admin/config/watch", self.base))
            .query("namespace", namespace)
            .query("kind", "settings")
            .set("Accept", "text/event-stream");
        if let Some(seq) = cursor {
            req = req.set("Last-Event-ID", &seq.to_string());
        }
        // The follower's own query is well-formed: a 400 is about its cursor.
        self.authorize(req)?.call().map_err(|e| match failure(&self.base, "watch", e) {
            Fetch::Refused(m) if m.contains("(400)") => Fetch::Reset(m),
            other => other,
        })
    }

    fn heartbeat(&self, report: &InstanceReport) -> Result<(), Fetch> {
        let req = self.requests.post(&format!("{}/admin/instances/heartbeat", self.base));
        self.authorize(req)?.send_json(report).map_err(|e| failure(&self.base, "heartbeat", e))?;
        Ok(())
    }
}

/// A failed request as a [`Fetch`], with the server's own message when it sent one.
fn failure(base: &str, what: &str, e: ureq::Error) -> Fetch {
    match e {
        ureq::Error::Status(code, resp) => {
            let body = resp.into_string().unwrap_or_default();
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_string))
                .unwrap_or(body);
            let text = format!("{base} refused the {what} ({code}): {message}");
            match code {
                // A token that expired or was revoked: a rotated token file may fix it.
                401 => Fetch::Unauthorized(text),
                408 | 429 | 500..=599 => Fetch::Retry(text),
                _ => Fetch::Refused(text),
            }
        }
        ureq::Error::Transport(t) => {
            let text = t.to_string();
            match crate::tls::hint(&text) {
                Some(hint) => Fetch::Retry(format!("cannot reach the cfgledger server at {base}: {text} ({hint})")),
                None => Fetch::Retry(format!("cannot reach the cfgledger server at {base}: {text}")),
            }
        }
    }
}

enum Msg {
    Event(SseEvent),
    End(String),
}

/// The longest a new connection waits for the stream's first `progress` before rendering anyway.
const SYNC_WAIT: Duration = Duration::from_secs(3);

/// What the follower owes its application, kept across connections so that nothing it heard of is lost
/// when a render or the stream fails before it was applied.
#[derive(Debug, Default)]
struct Owed {
    /// A render is due.
    render: bool,
    /// A change it heard of takes effect only at a restart.
    restart: bool,
    /// It reconnected or started from the cache: a change the next render shows may come with no event to
    /// say whether it needs a restart (the server's environment layer), so it is taken to need one.
    unexplained: bool,
    /// The newest change event's seq: a render older than it is not applied.
    newest: u64,
    /// The server's log was shorter than the cursor: whatever it renders is taken, even if older.
    reset: bool,
}

/// Follows until stopped: connect, catch up, apply changes; on any failure, stale, back off, connect again.
fn follow(shared: Arc<Shared>) {
    let opts = &shared.options;
    let mut backoff = opts.backoff_min;
    let mut cursor = Some(shared.snapshot.load().seq);
    let mut owed = Owed::default();
    if shared.snapshot.load().origin == Origin::Cache {
        owed.render = true;
        owed.unexplained = true;
    }
    let mut first = true;
    while !shared.stopped() {
        let response = match shared.http.watch(&opts.namespace, cursor) {
            Ok(r) => r,
            Err(Fetch::Reset(m)) => {
                // Start over from its head and render what it holds.
                tracing::error!(error = %m, "the server's log does not reach the seq this follower applied");
                shared.set_stale(m);
                cursor = None;
                owed = Owed { render: true, restart: true, unexplained: true, newest: 0, reset: true };
                sleep_while_running(&shared, jitter(backoff));
                backoff = (backoff * 2).min(opts.backoff_max);
                continue;
            }
            Err(Fetch::Unauthorized(m)) => {
                shared.set_stale(format!("{m}; replace the token (the token file is read again at every attempt)"));
                sleep_while_running(&shared, jitter(backoff));
                backoff = (backoff * 2).min(opts.backoff_max);
                continue;
            }
            Err(Fetch::Retry(m) | Fetch::Refused(m)) => {
                shared.set_stale(m);
                sleep_while_running(&shared, jitter(backoff));
                backoff = (backoff * 2).min(opts.backoff_max);
                continue;
            }
        };
        let reconnect = !first || shared.status.lock().unwrap_or_else(|e| e.into_inner()).stale;
        if reconnect {
            shared.with_status(|s| s.reconnects += 1);
            // After an outage, render again even if no event was missed: the server's environment layer may
            // have changed while it was down.
            owed.render = true;
            owed.unexplained = true;
        }
        first = false;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("cfgledger-stream".into())
            .spawn(move || {
                let mut reader = SseReader::new(std::io::BufReader::new(response.into_reader()));
                loop {
                    let msg = match reader.next_event() {
                        Ok(Some(ev)) => Msg::Event(ev),
                        Ok(None) => Msg::End("the server ended the watch stream".into()),
                        Err(e) => Msg::End(format!("the watch stream broke: {e}")),
                    };
                    let end = matches!(msg, Msg::End(_));
                    if tx.send(msg).is_err() || end {
                        return;
                    }
                }
            })
            .ok();
        // Resuming replays what was missed; the stream's first `progress` says it has caught up. Until
        // then changes accumulate, and one render applies them all.
        let connected_at = Instant::now();
        let mut synced = false;
        let mut retry_render = opts.backoff_min;
        let mut render_at = Instant::now();
        let ended = loop {
            if shared.stopped() {
                return;
            }
            // Sleep until something arrives, a render is due, or the stream's first progress is overdue; at
            // most a second, to notice `stop`.
            let now = Instant::now();
            let mut wait = Duration::from_secs(1);
            if owed.render && synced {
                wait = wait.min(render_at.saturating_duration_since(now));
            }
            if !synced {
                wait = wait.min((connected_at + SYNC_WAIT).saturating_duration_since(now));
            }
            let msg = match rx.recv_timeout(wait.max(Duration::from_millis(5))) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break "the watch stream's reader stopped".to_string(),
            };
            let mut progress: Option<WatchProgress> = None;
            let mut end = None;
            let mut next = msg;
            while let Some(m) = next.take() {
                match m {
                    Msg::End(why) => end = Some(why),
                    Msg::Event(ev) => {
                        let id = ev.id.as_deref().and_then(|i| i.parse::<u64>().ok());
                        if ev.event == "progress" {
                            if let Ok(p) = serde_json::from_str::<WatchProgress>(&ev.data) {
                                progress = Some(p);
                            }
                            synced = true;
                        } else if ev.event == "end" {
                            end = Some(format!("the server ended the watch stream: {}", ev.data));
                        } else if let Ok(n) = serde_json::from_str::<ChangeNotice>(&ev.data) {
                            owed.render = true;
                            owed.restart |= n.restart_required;
                            owed.unexplained = false;
                            owed.newest = owed.newest.max(n.seq);
                        }
                        if id.is_some() {
                            cursor = id;
                        }
                    }
                }
                // Take whatever else has already arrived, so that a burst costs one render.
                if end.is_none() {
                    next = rx.try_recv().ok();
                }
            }
            if !synced && connected_at.elapsed() >= SYNC_WAIT {
                synced = true;
            }
            if synced {
                if owed.render && Instant::now() >= render_at {
                    match shared.refresh(owed.restart || owed.unexplained, owed.newest, owed.reset) {
                        Ok(true) => {
                            owed = Owed { newest: owed.newest, ..Owed::default() };
                            retry_render = opts.backoff_min;
                        }
                        // A server that lags what the stream said: try again shortly, not in a tight loop
                        // (a render with secrets is recorded each time).
                        Ok(false) => {
                            render_at = Instant::now() + jitter(retry_render);
                            retry_render = (retry_render * 2).min(Duration::from_secs(5));
                        }
                        Err(Fetch::Retry(m) | Fetch::Refused(m) | Fetch::Reset(m) | Fetch::Unauthorized(m)) => break m,
                    }
                }
                // The position moves with the stream only while nothing is owed: until then the application
                // has not applied what lies between.
                if let (Some(p), false) = (&progress, owed.render) {
                    shared.advance(p.seq, &p.hash);
                }
                shared.set_fresh();
                backoff = opts.backoff_min;
            }
            if let Some(why) = end {
                break why;
            }
        };
        shared.set_stale(ended);
        sleep_while_running(&shared, jitter(backoff));
        backoff = (backoff * 2).min(opts.backoff_max);
    }
}

/// `text` without control characters (each becomes a space), at most 1000 bytes: what a heartbeat may carry.
fn printable(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().map(|c| if c.is_control() { ' ' } else { c }) {
        if out.len() + c.len_utf8() > 1000 {
            break;
        }
        out.push(c);
    }
    out
}

fn heartbeat(shared: Arc<Shared>, wake: mpsc::Receiver<()>, every: Duration) {
    let mut refused: Option<String> = None;
    while !shared.stopped() {
        let report = shared.report();
        match shared.http.heartbeat(&report) {
            Ok(()) => refused = None,
            // The server is away: the follower already says so.
            Err(Fetch::Retry(m)) => tracing::debug!(error = %m, "cannot send the heartbeat"),
            // Refused (a token, an id another subject holds, a report out of shape): the instance is missing
            // from the server's view until it is fixed, so say it, once per distinct refusal.
            Err(Fetch::Refused(m) | Fetch::Reset(m) | Fetch::Unauthorized(m)) => {
                if refused.as_deref() != Some(m.as_str()) {
                    tracing::warn!(error = %m, "the server refused the heartbeat: this instance is not listed in GET /admin/instances");
                    refused = Some(m);
                }
            }
        }
        match wake.recv_timeout(every) {
            Ok(()) => {
                // Coalesce a burst of wake-ups into one beat, sent at a random point of the next second so
                // that a fleet's beats after one change do not arrive together.
                use rand::Rng;
                let spread = every.min(Duration::from_secs(1));
                std::thread::sleep(spread.mul_f64(rand::thread_rng().gen_range(0.05..1.0)));
                while wake.try_recv().is_ok() {}
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn sleep_while_running(shared: &Shared, total: Duration) {
    let until = Instant::now() + total;
    while !shared.stopped() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Between half and all of `d`, so that a fleet does not reconnect in step.
fn jitter(d: Duration) -> Duration {
    use rand::Rng;
    d.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

fn random_id() -> String {
    use rand::Rng;
    let n: u128 = rand::thread_rng().gen();
    format!("{n:032x}")
}
