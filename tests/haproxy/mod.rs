//! A real load balancer for tests and benches: Debian's `haproxy`, started in the foreground on a free
//! loopback port with a config of its own in a temp dir, in front of several `cfgledger serve` processes, and
//! killed when dropped. A missing `haproxy` is installed (`apt-get install haproxy`, once, under a lock); if
//! that fails the caller fails loudly, it never skips.
//!
//! The config is the one `docs/deployment.md` recommends: round robin per request, `/ready` as the health
//! check (a server that is down, or whose store is unreachable, leaves the rotation), a request whose
//! connection to a server could not be made is sent to another (`retry-on conn-failure`, `option
//! redispatch`), and a watch stream may stay open for an hour (`timeout tunnel`; the servers' keep-alives
//! keep the server side busy far more often than `timeout server`).
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HAPROXY: &str = "/usr/sbin/haproxy";

/// A running HAProxy. Dropping it kills the process.
pub struct Balancer {
    child: Child,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`, the address clients use.
    pub url: String,
    pub addr: SocketAddr,
}

impl Balancer {
    /// HAProxy in front of `backends` (`http://127.0.0.1:PORT` or `127.0.0.1:PORT`), once it accepts
    /// connections and its health checks have seen every backend up.
    pub fn start(backends: &[String]) -> Result<Balancer, String> {
        ensure_installed()?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let addr = b.trim_start_matches("http://").trim_end_matches('/');
                format!("    server s{i} {addr} check inter 250ms fall 2 rise 2\n")
            })
            .collect();
        // Each proxied connection holds two descriptors; HAProxy refuses to start past the hard file limit.
        let maxconn = open_files_limit().map_or(4000, |n| (n.saturating_sub(200) / 2).min(40_000));
        let config = format!(
            "global\n    maxconn {maxconn}\n    log stderr format short local0 notice\n\n\
             defaults\n    mode http\n    log global\n    option dontlognull\n    maxconn {maxconn}\n\
             \x20   timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n    timeout tunnel 1h\n\
             \x20   timeout http-keep-alive 10s\n    retries 3\n    option redispatch\n    retry-on conn-failure\n\n\
             frontend cfgledger\n    bind 127.0.0.1:{port}\n    default_backend servers\n\n\
             backend servers\n    balance roundrobin\n    option httpchk GET /ready\n\
             \x20   http-check expect status 200\n{servers}"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).map_err(|e| e.to_string())?;
        let check = Command::new(HAPROXY).arg("-c").arg("-f").arg(&path).output().map_err(|e| e.to_string())?;
        if !check.status.success() {
            return Err(format!("haproxy rejects its config: {}", String::from_utf8_lossy(&check.stderr)));
        }
        let log = std::fs::File::create(dir.path().join("haproxy.log")).map_err(|e| e.to_string())?;
        let child = Command::new(HAPROXY)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start haproxy: {e}"))?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().map_err(|e| format!("{e}"))?;
        let mut balancer = Balancer { child, dir, url: format!("http://{addr}"), addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = balancer.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("haproxy exited at start ({status}): {}", balancer.log()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("haproxy does not accept connections on {addr}: {}", balancer.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Ready once a request through it reaches a server.
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).build();
        while !agent.get(&format!("{}/health", balancer.url)).call().is_ok_and(|r| r.status() == 200) {
            if Instant::now() > deadline {
                return Err(format!("no server answers through haproxy on {addr}: {}", balancer.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(balancer)
    }

    /// What HAProxy logged (its alerts and the servers it marked up or down).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This process's hard limit on open files (HAProxy inherits it), from `/proc/self/limits`.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(4)?.parse().ok()
}

/// Installs Debian's haproxy when it is missing, once across concurrent test binaries.
fn ensure_installed() -> Result<(), String> {
    if Path::new(HAPROXY).exists() {
        return Ok(());
    }
    let lock_dir = std::env::temp_dir();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_dir.join("cfgledger-haproxy-install.lock"))
        .map_err(|e| format!("open the install lock: {e}"))?;
    // `File::lock` is stable since Rust 1.89 (above the workspace's rust-version, which only the library claims).
    #[allow(clippy::incompatible_msrv)]
    file.lock().map_err(|e| format!("lock the install lock: {e}"))?;
    if Path::new(HAPROXY).exists() {
        return Ok(());
    }
    eprintln!("installing Debian's haproxy for the load-balancer tests");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "haproxy"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    if !install().is_ok_and(|o| o.status.success()) {
        let _ = Command::new("apt-get").arg("update").env("DEBIAN_FRONTEND", "noninteractive").output();
        let out = install().map_err(|e| format!("cannot run apt-get: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "apt-get install haproxy failed (the load-balancer tests need Debian's haproxy): {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let mut marker = file;
    let _ = writeln!(marker, "installed");
    if Path::new(HAPROXY).exists() {
        Ok(())
    } else {
        Err(format!("apt-get installed haproxy but {HAPROXY} is still missing"))
    }
}
