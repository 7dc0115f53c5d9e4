//! The etcd side of the load bench (benches/load.rs), in a crate of its own so that the default build never
//! compiles etcd's gRPC client (etcd-client, whose build script needs `protoc`). The harness starts this
//! program with `--etcd BIN --dir DIR`; it starts etcd with its data in `DIR`, then runs on request the
//! same phases the harness runs on cfgledger, with the same measuring code (benches/load/measure.rs), and
//! answers each with what it measured. One JSON request per line on stdin, one JSON reply per line on
//! stdout (benches/load/wire.rs); nothing else is printed on stdout. It stops etcd and exits on `Stop`, or
//! when its stdin closes (the harness ended).
//!
//! Needs `protoc` to build (Debian: `apt-get install protobuf-compiler libprotobuf-dev`) and etcd to run (`etcd-server`).
//! The harness builds it itself into target/etcd-peer; by hand:
//! `cargo build --release --manifest-path benches/etcd-peer/Cargo.toml`.

mod etcd;
// The harness's measuring code: this side uses what drives etcd, not every helper the harness prints with.
#[allow(dead_code)]
#[path = "../../load/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "../../load/process.rs"]
mod process;
#[path = "../../load/procfs.rs"]
mod procfs;
#[path = "../../load/wire.rs"]
mod wire;

use std::io::Write;
use std::path::PathBuf;
use tokio::io::{AsyncBufReadExt, BufReader};
use wire::{Reply, Request};

/// Prints one reply line; a closed stdout means the harness is gone, and the next read of stdin ends the run.
fn reply(answer: &Reply) {
    let line =
        serde_json::to_string(answer).unwrap_or_else(|e| format!("{{\"Failed\":\"cannot encode a reply: {e}\"}}"));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// `--etcd BIN --dir DIR`.
fn arguments() -> Result<(PathBuf, PathBuf), String> {
    let usage = "usage: etcd-peer --etcd BIN --dir DIR (started by benches/load.rs)";
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [e, bin, d, dir] if e == "--etcd" && d == "--dir" => Ok((PathBuf::from(bin), PathBuf::from(dir))),
        _ => Err(usage.to_string()),
    }
}

/// Runs one request on `server`.
async fn run_phase(server: &etcd::Etcd, request: Request) -> Reply {
    let pid = server.pid();
    let measured = match request {
        Request::Get { clients, serializable, window } => match server.getters(clients, serializable).await {
            Ok(workers) => Ok(Reply::Phase(measure::run(workers, window, pid).await)),
            Err(why) => Err(why),
        },
        Request::Put { clients, window } => match server.putters(clients).await {
            Ok(workers) => Ok(Reply::Phase(measure::run(workers, window, pid).await)),
            Err(why) => Err(why),
        },
        Request::Watch { changes } => match server.watch().await {
            Ok((writer, events)) => Ok(Reply::Delivery(measure::delivery(writer, events, changes, pid).await)),
            Err(why) => Err(why),
        },
        Request::Fanout { watchers, changes } => server.fanout(watchers, changes).await.map(Reply::Fanout),
        Request::Stop => Err("Stop is answered by stopping".into()),
    };
    measured.unwrap_or_else(Reply::Failed)
}

#[tokio::main]
async fn main() {
    let (bin, dir) = match arguments() {
        Ok(found) => found,
        Err(usage) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let mut server = match etcd::Etcd::start(&bin, &dir).await {
        Ok(server) => server,
        Err(why) => {
            reply(&Reply::Failed(why));
            std::process::exit(1);
        }
    };
    reply(&Reply::Ready { pid: server.pid(), version: etcd::version(&bin) });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Stop) => break,
            Ok(request) => run_phase(&server, request).await,
            Err(e) => Reply::Failed(format!("not a request ({e}): {line}")),
        };
        reply(&answer);
    }
    reply(&Reply::Stopped(server.stop()));
}
