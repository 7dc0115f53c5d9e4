//! The etcd half, as the harness sees it: Debian's `etcd` (etcd-server) driven by the etcd peer
//! (benches/etcd-peer), a program of its own because etcd's gRPC client needs `protoc` to build. The
//! harness builds the peer (release, into target/etcd-peer) unless `ETCD_PEER_BIN` names one, starts it,
//! and asks it for each phase in turn (benches/load/wire.rs); the peer runs the phase's clients itself and
//! sends back what it measured.

use crate::measure::{Delivery, Phase, Window};
use crate::wire::{Reply, Request};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// `ETCD_BIN`, else `etcd` on the `PATH`, if that file exists.
pub fn locate() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("ETCD_BIN") {
        return Some(PathBuf::from(bin)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join("etcd")).find(|p| p.is_file())
}

/// `ETCD_PEER_BIN`, else the peer built from benches/etcd-peer with the cargo that runs this bench.
async fn peer_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("ETCD_PEER_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = root.join("benches/etcd-peer/Cargo.toml");
    let target = root.join("target/etcd-peer");
    println!("  building the etcd peer: cargo build --release --manifest-path benches/etcd-peer/Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .stdin(Stdio::null())
        .status()
        .await
        .map_err(|e| format!("cannot run cargo to build the etcd peer: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cannot build benches/etcd-peer ({status}; cargo's output is above). Its etcd-client generates gRPC \
             code with protoc: Debian `apt-get install protobuf-compiler libprotobuf-dev` (its well-known types)"
        ));
    }
    Ok(target.join("release/etcd-peer"))
}

/// A running etcd, behind the peer that drives it.
pub struct Etcd {
    peer: Child,
    requests: ChildStdin,
    replies: Lines<BufReader<ChildStdout>>,
    pid: u32,
    pub version: String,
}

impl Etcd {
    /// Builds and starts the peer, which starts etcd with its data and log in `dir` and answers once etcd
    /// answers a status request.
    pub async fn start(bin: &Path, dir: &Path) -> Result<Etcd, String> {
        let peer_bin = peer_binary().await?;
        let mut peer = Command::new(&peer_bin)
            .arg("--etcd")
            .arg(bin)
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the etcd peer {}: {e}", peer_bin.display()))?;
        let requests = peer.stdin.take().ok_or("the etcd peer has no stdin")?;
        let replies = BufReader::new(peer.stdout.take().ok_or("the etcd peer has no stdout")?).lines();
        let mut etcd = Etcd { peer, requests, replies, pid: 0, version: String::new() };
        match etcd.reply().await? {
            Reply::Ready { pid, version } => {
                (etcd.pid, etcd.version) = (pid, version);
                Ok(etcd)
            }
            Reply::Failed(why) => Err(why),
            _ => Err("the etcd peer answered its start with something else than Ready".into()),
        }
    }

    async fn reply(&mut self) -> Result<Reply, String> {
        let line = self.replies.next_line().await.map_err(|e| format!("cannot read from the etcd peer: {e}"))?;
        let line = line.ok_or("the etcd peer exited (its output is above)")?;
        serde_json::from_str(&line).map_err(|e| format!("the etcd peer said something unexpected ({e}): {line}"))
    }

    async fn ask(&mut self, request: &Request) -> Result<Reply, String> {
        let mut line = serde_json::to_string(request).map_err(|e| format!("cannot encode a request: {e}"))?;
        line.push('\n');
        self.requests.write_all(line.as_bytes()).await.map_err(|e| format!("cannot write to the etcd peer: {e}"))?;
        self.requests.flush().await.map_err(|e| format!("cannot write to the etcd peer: {e}"))?;
        self.reply().await
    }

    async fn phase(&mut self, request: Request) -> Result<Phase, String> {
        match self.ask(&request).await? {
            Reply::Phase(phase) => Ok(phase),
            Reply::Failed(why) => Err(why),
            _ => Err("the etcd peer answered a phase with something else".into()),
        }
    }

    /// Ranges of the read key from `clients` clients, each with its own connection; `serializable` reads the
    /// member's local state instead of etcd's default linearizable read (which confirms leadership through
    /// raft first).
    pub async fn get(&mut self, clients: usize, serializable: bool, window: Window) -> Result<Phase, String> {
        self.phase(Request::Get { clients, serializable, window }).await
    }

    /// Puts to the write key from `clients` clients, each with its own connection.
    pub async fn put(&mut self, clients: usize, window: Window) -> Result<Phase, String> {
        self.phase(Request::Put { clients, window }).await
    }

    /// `changes` puts one at a time, each timed to its arrival at a watch on the key.
    pub async fn watch(&mut self, changes: usize) -> Result<Delivery, String> {
        match self.ask(&Request::Watch { changes }).await? {
            Reply::Delivery(delivery) => Ok(delivery),
            Reply::Failed(why) => Err(why),
            _ => Err("the etcd peer answered a watch with something else".into()),
        }
    }

    /// `watchers` watches on the write key, one connection each, then `changes` paced puts, each timed to its
    /// arrival at the last watcher (benches/fleet.rs).
    #[allow(dead_code)] // benches/fleet.rs only
    pub async fn fanout(&mut self, watchers: usize, changes: usize) -> Result<crate::wire::Fanout, String> {
        match self.ask(&Request::Fanout { watchers, changes }).await? {
            Reply::Fanout(figures) => Ok(figures),
            Reply::Failed(why) => Err(why),
            _ => Err("the etcd peer answered a fan-out with something else".into()),
        }
    }

    /// etcd's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops etcd (through the peer, with SIGTERM) and says how that went.
    pub async fn stop(&mut self) -> String {
        let stopped = match self.ask(&Request::Stop).await {
            Ok(Reply::Stopped(how)) => how,
            Ok(_) => "the etcd peer answered Stop with something else".into(),
            Err(why) => why,
        };
        let _ = self.peer.wait().await;
        stopped
    }
}
