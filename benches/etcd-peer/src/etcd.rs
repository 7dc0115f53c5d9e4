//! The etcd half of the load bench: Debian's `etcd` (etcd-server) as a single-member cluster on loopback
//! with its data in a temp dir and default durability (it fsyncs its WAL before acknowledging a put),
//! driven through etcd's own gRPC API with the `etcd-client` crate: range (get) of one key, puts to one
//! key, and a watch on it.

use crate::measure::{next_value, Events, Failure, Worker, Writer};
use crate::process::Child;
use crate::procfs::{cpu_ticks, rss_kib, TICKS_PER_SEC};
use crate::wire::Fanout;
use etcd_client::{Client, GetOptions};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The key the get phase reads (holding a short value, like a setting).
const READ_KEY: &str = "bench/LOG_LEVEL";
/// The key the put and watch phases write.
const WRITE_KEY: &str = "bench/TOOL_RATE_LIMIT";

/// The first line of `etcd --version`.
pub fn version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_string))
        .unwrap_or_else(|| "version unknown".into())
}

/// A free loopback port (the listener is dropped at once; etcd binds it a moment later).
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    Ok(listener.local_addr().map_err(|e| format!("cannot find a free port: {e}"))?.port())
}

/// A running single-member etcd.
pub struct Etcd {
    server: Option<Child>,
    endpoint: String,
}

impl Etcd {
    /// Starts etcd with its data and log in `dir` and waits until it answers a status request.
    pub async fn start(bin: &Path, dir: &Path) -> Result<Etcd, String> {
        let client_url = format!("http://127.0.0.1:{}", free_port()?);
        let peer_url = format!("http://127.0.0.1:{}", free_port()?);
        let log = dir.join("etcd.log");
        let log_file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let log_err = log_file.try_clone().map_err(|e| format!("cannot share {}: {e}", log.display()))?;
        let mut command = Command::new(bin);
        command
            .arg("--name=default")
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"))
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        let mut server = Child::spawn("etcd", &mut command)?;
        let endpoint = client_url.trim_start_matches("http://").to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.exited() {
                return Err(format!(
                    "etcd exited at start ({status}); its log ends with:\n{}",
                    crate::process::tail(&log)
                ));
            }
            if let Ok(mut client) = Client::connect([&endpoint], None).await {
                if client.status().await.is_ok() {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd did not answer within 30 s; its log ends with:\n{}",
                    crate::process::tail(&log)
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let etcd = Etcd { server: Some(server), endpoint };
        etcd.client().await?.put(READ_KEY, "warn", None).await.map_err(|e| format!("etcd put {READ_KEY}: {e}"))?;
        Ok(etcd)
    }

    /// A new client: its own gRPC channel, so its own HTTP/2 connection.
    async fn client(&self) -> Result<Client, String> {
        Client::connect([&self.endpoint], None)
            .await
            .map_err(|e| format!("cannot connect to etcd at {}: {e}", self.endpoint))
    }

    /// One range worker per client, each with its own connection; `serializable` reads the member's local
    /// state instead of etcd's default linearizable read (which confirms leadership through raft first).
    pub async fn getters(&self, clients: usize, serializable: bool) -> Result<Vec<Get>, String> {
        let mut workers = Vec::with_capacity(clients);
        for _ in 0..clients {
            let options = serializable.then(|| GetOptions::new().with_serializable());
            workers.push(Get { client: self.client().await?, options });
        }
        Ok(workers)
    }

    /// One put worker per client, each with its own connection.
    pub async fn putters(&self, clients: usize) -> Result<Vec<Put>, String> {
        let mut workers = Vec::with_capacity(clients);
        for _ in 0..clients {
            workers.push(Put { client: self.client().await? });
        }
        Ok(workers)
    }

    /// A watch on the write key from the current revision on, on a client of its own, once etcd has said it
    /// is created; the client must live as long as the stream.
    async fn created_watch(&self) -> Result<(Client, etcd_client::WatchStream), String> {
        let mut client = self.client().await?;
        let mut stream = client.watch(WRITE_KEY, None).await.map_err(|e| format!("etcd watch: {e}"))?;
        match stream.message().await {
            Ok(Some(created)) if created.created() && !created.canceled() => Ok((client, stream)),
            Ok(other) => Err(format!("etcd watch was not created: {other:?}")),
            Err(e) => Err(format!("etcd watch: {e}")),
        }
    }

    /// Opens a watch on the write key (from the current revision on) and returns a writer for that key and
    /// the values the watch delivers.
    pub async fn watch(&self) -> Result<(Put, Events), String> {
        let (client, mut stream) = self.created_watch().await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _client = client; // the watch's connection lives as long as this task
            while let Ok(Some(response)) = stream.message().await {
                let arrived = Instant::now();
                for event in response.events() {
                    let value = event.kv().and_then(|kv| kv.value_str().ok()).and_then(|v| v.parse().ok());
                    if let Some(value) = value {
                        if tx.send((value, arrived)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok((Put { client: self.client().await? }, rx))
    }

    /// Fan-out, measured as benches/fleet.rs measures cfgledger: `watchers` watches on the write key, each on
    /// a client (an HTTP/2 connection) of its own, counted once caught up (created); etcd's memory per watcher
    /// and its CPU while idle; then `changes` puts, one at a time, each timed from just before it is sent to
    /// the moment the last watcher received it. A missing or repeated event fails the phase.
    pub async fn fanout(&self, watchers: usize, changes: usize) -> Result<Fanout, String> {
        let pid = self.pid();
        let base = next_value();
        let epoch = Instant::now();
        let count: Arc<Vec<AtomicUsize>> = Arc::new((0..changes).map(|_| AtomicUsize::new(0)).collect());
        let last: Arc<Vec<AtomicU64>> = Arc::new((0..changes).map(|_| AtomicU64::new(0)).collect());
        let strays = Arc::new(AtomicUsize::new(0));
        let rss_before = rss_kib(pid);
        for _ in 0..watchers {
            let (client, mut stream) = self.created_watch().await?;
            let (count, last, strays) = (count.clone(), last.clone(), strays.clone());
            tokio::spawn(async move {
                let _client = client; // the watch's connection lives as long as this task
                let mut got = vec![false; count.len()];
                while let Ok(Some(response)) = stream.message().await {
                    let at = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    for event in response.events() {
                        let value: Option<i64> =
                            event.kv().and_then(|kv| kv.value_str().ok()).and_then(|v| v.parse().ok());
                        let index = value.and_then(|v| usize::try_from(v - base).ok());
                        match index.and_then(|i| got.get_mut(i).map(|g| (i, g))) {
                            Some((i, g)) if !*g => {
                                *g = true;
                                last[i].fetch_max(at, Ordering::Relaxed);
                                count[i].fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                strays.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_with = rss_kib(pid);
        let idle_from = cpu_ticks(pid);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let idle_cpu = (cpu_ticks(pid) - idle_from) as f64 / TICKS_PER_SEC / 5.0;

        let mut writer = Put { client: self.client().await? };
        let mut latencies = Vec::with_capacity(changes);
        let busy_from = cpu_ticks(pid);
        for (i, count) in count.iter().enumerate() {
            let sent = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(0);
            writer.put(base + i as i64).await.map_err(|(Failure::Rejected(e) | Failure::Broken(e))| e)?;
            let deadline = Instant::now() + Duration::from_secs(60);
            while count.load(Ordering::Relaxed) < watchers {
                if Instant::now() > deadline {
                    return Err(format!(
                        "etcd: change {i} reached {} of {watchers} watchers in 60 s",
                        count.load(Ordering::Relaxed)
                    ));
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            latencies.push(last[i].load(Ordering::Relaxed).saturating_sub(sent) as f64 / 1e6);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let busy = (cpu_ticks(pid) - busy_from) as f64 / TICKS_PER_SEC;
        let strays = strays.load(Ordering::Relaxed);
        if strays > 0 {
            return Err(format!("etcd: {strays} event(s) arrived twice or for no change"));
        }
        latencies.sort_by(f64::total_cmp);
        let at = |p: f64| latencies[((p / 100.0) * latencies.len() as f64).ceil().max(1.0) as usize - 1];
        Ok(Fanout {
            p50_ms: at(50.0),
            p99_ms: at(99.0),
            rss_per_watcher_kib: rss_with.saturating_sub(rss_before) as f64 / watchers as f64,
            idle_cpu,
            // The pause after each change is idle time, at the idle rate measured above.
            cpu_per_change_ms: ((busy - idle_cpu * 0.05 * changes as f64).max(0.0) / changes as f64) * 1e3,
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.server.as_ref().map_or(0, Child::pid)
    }

    /// Stops etcd with SIGTERM and says how that went.
    pub fn stop(&mut self) -> String {
        match self.server.take() {
            Some(child) => child.terminate(),
            None => "not running".into(),
        }
    }
}

/// A range of the read key, expecting it to be there.
pub struct Get {
    client: Client,
    options: Option<GetOptions>,
}

impl Worker for Get {
    async fn call(&mut self) -> Result<(), Failure> {
        let response = self
            .client
            .get(READ_KEY, self.options.clone())
            .await
            .map_err(|e| Failure::Rejected(format!("etcd range {READ_KEY}: {e}")))?;
        if response.kvs().len() != 1 {
            return Err(Failure::Rejected(format!("etcd range {READ_KEY} found {} keys", response.kvs().len())));
        }
        Ok(())
    }
}

/// A put of a fresh value to the write key.
pub struct Put {
    client: Client,
}

impl Put {
    async fn put(&mut self, value: i64) -> Result<(), Failure> {
        self.client
            .put(WRITE_KEY, value.to_string(), None)
            .await
            .map(drop)
            .map_err(|e| Failure::Rejected(format!("etcd put {WRITE_KEY}: {e}")))
    }
}

impl Worker for Put {
    async fn call(&mut self) -> Result<(), Failure> {
        self.put(next_value()).await
    }
}

impl Writer for Put {
    async fn write(&mut self, value: i64) -> Result<(), Failure> {
        self.put(value).await
    }
}
