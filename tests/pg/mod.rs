//! A real PostgreSQL for tests, never a mock and never skipped. The server is, in order:
//! `CFGLEDGER_TEST_PG_URL` (an admin URL such as `postgres://postgres@127.0.0.1:5432/postgres`), else the
//! server on 127.0.0.1:5432 when it answers, else a private throwaway cluster started from the installed
//! binaries (`initdb` and `pg_ctl` in a temp dir). If none works the test panics with what was tried.
//! Each test gets its own database, dropped when the handle goes. A private cluster can also be given a
//! streaming standby (`Cluster::standby_of`), which a failover test promotes.
#![allow(dead_code)]

use postgres::{Client, NoTls};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where test databases are created: an admin URL without the database part, e.g.
/// `postgres://postgres@127.0.0.1:5432`.
struct Server {
    base: String,
    /// Keeps a private cluster alive for the whole test binary.
    _cluster: Option<Cluster>,
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        let mut tried = Vec::new();
        if let Ok(url) = std::env::var("CFGLEDGER_TEST_PG_URL") {
            match Client::connect(&url, NoTls) {
                Ok(_) => return Server { base: strip_database(&url), _cluster: None },
                Err(e) => panic!("CFGLEDGER_TEST_PG_URL={url} does not answer: {e}"),
            }
        }
        let local = "postgres://postgres@127.0.0.1:5432";
        match Client::connect(&format!("{local}/postgres?connect_timeout=2"), NoTls) {
            Ok(_) => return Server { base: local.to_string(), _cluster: None },
            Err(e) => tried.push(format!("{local}: {e}")),
        }
        match Cluster::start_new() {
            Ok(cluster) => Server { base: cluster.base_url(), _cluster: Some(cluster) },
            Err(e) => {
                tried.push(format!("a private cluster: {e}"));
                panic!("no PostgreSQL for the tests; tried {}", tried.join("; "))
            }
        }
    })
}

fn strip_database(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let authority = rest.split('/').next().unwrap_or_default();
    format!("{scheme}://{authority}")
}

fn admin(base: &str) -> Client {
    Client::connect(&format!("{base}/postgres"), NoTls).expect("the admin connection opens")
}

/// A database of its own for one test, dropped (connections and all) when this handle goes.
pub struct TestDb {
    base: String,
    pub name: String,
}

impl TestDb {
    /// A fresh, empty database on the shared test server.
    pub fn new() -> TestDb {
        TestDb::on(&server().base)
    }

    /// A fresh database on the server at `base` (a private cluster's, for instance).
    pub fn on(base: &str) -> TestDb {
        TestDb::create(base, "")
    }

    /// A fresh database whose default collation is ICU's `locale` (`en-US`: a linguistic order, where case
    /// and accents are compared after the letters, unlike a byte order).
    pub fn with_icu_collation(locale: &str) -> TestDb {
        TestDb::create(&server().base, &format!(" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{locale}'"))
    }

    fn create(base: &str, options: &str) -> TestDb {
        let name = format!("cfgl_test_{}", uuid::Uuid::new_v4().simple());
        admin(base).batch_execute(&format!("CREATE DATABASE {name}{options}")).expect("the test database is created");
        TestDb { base: base.to_string(), name }
    }

    /// The URL cfgledger takes with `--db`.
    pub fn url(&self) -> String {
        format!("{}/{}", self.base, self.name)
    }

    /// A direct connection, to look behind the store's back.
    pub fn client(&self) -> Client {
        Client::connect(&self.url(), NoTls).expect("a direct connection opens")
    }

    /// This database's URL for another role (the server trusts local connections).
    pub fn url_as(&self, role: &str) -> String {
        let (scheme, rest) = self.base.split_once("://").expect("a URL with a scheme");
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        format!("{scheme}://{role}@{host}/{}", self.name)
    }
}

/// A login role made for one test, dropped with it (after the test's databases, which hold its grants:
/// declare it before them).
pub struct TestRole {
    base: String,
    pub name: String,
}

impl TestRole {
    pub fn new() -> TestRole {
        let base = server().base.clone();
        let name = format!("cfgl_role_{}", uuid::Uuid::new_v4().simple());
        admin(&base).batch_execute(&format!("CREATE ROLE {name} LOGIN")).expect("the test role is created");
        TestRole { base, name }
    }
}

impl Drop for TestRole {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(&format!("{}/postgres", self.base), NoTls) {
            let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name));
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(&format!("{}/postgres", self.base), NoTls) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// A private PostgreSQL cluster in a temp dir, on a free port, that a test may stop and start.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl Cluster {
    /// `initdb` and start a new cluster; errors say what is missing.
    pub fn start_new() -> Result<Cluster, String> {
        Cluster::start_new_with("", &[])
    }

    /// Like [`Cluster::start_new`], with `conf` appended to its `postgresql.conf` and `files` (name, bytes)
    /// written into its data directory, readable by the server only, before it starts: TLS certificates and
    /// `ssl = on`, say.
    pub fn start_new_with(conf: &str, files: &[(&str, &[u8])]) -> Result<Cluster, String> {
        let bin = find_bin().ok_or("no initdb under /usr/lib/postgresql/*/bin or on PATH")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port()?;
        let cluster = Cluster { dir, bin, port };
        std::fs::create_dir_all(cluster.data()).map_err(|e| e.to_string())?;
        cluster.own()?;
        cluster.run("initdb", &["-D", &cluster.data_str(), "--auth=trust", "--username=postgres", "-E", "UTF8"])?;
        if !conf.is_empty() || !files.is_empty() {
            use std::io::Write;
            use std::os::unix::fs::PermissionsExt;
            for (name, bytes) in files {
                let path = cluster.data().join(name);
                std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
            }
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(cluster.data().join("postgresql.conf"))
                .map_err(|e| e.to_string())?;
            writeln!(file, "\n{conf}").map_err(|e| e.to_string())?;
            cluster.own()?;
        }
        cluster.start()?;
        Ok(cluster)
    }

    /// A streaming standby of `primary`, started: `pg_basebackup -R` (which writes `primary_conninfo` and
    /// `standby.signal`) into a temp dir of its own, with `conf` appended to the `postgresql.conf` it copied
    /// from the primary (later lines win), on a port of its own.
    pub fn standby_of(primary: &Cluster, conf: &str) -> Result<Cluster, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port()?;
        let standby = Cluster { dir, bin: primary.bin.clone(), port };
        standby.own()?;
        let source_port = primary.port.to_string();
        standby.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &source_port,
                "-U",
                "postgres",
                "-D",
                &standby.data_str(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        )?;
        {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(standby.data().join("postgresql.conf"))
                .map_err(|e| e.to_string())?;
            writeln!(file, "\n{conf}").map_err(|e| e.to_string())?;
        }
        standby.own()?;
        standby.start()?;
        Ok(standby)
    }

    /// Promotes a standby to a primary (`pg_ctl promote`), waiting until it takes writes.
    pub fn promote(&self) -> Result<(), String> {
        self.run("pg_ctl", &["-D", &self.data_str(), "-w", "-t", "60", "promote"])
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn data_str(&self) -> String {
        self.data().display().to_string()
    }

    /// `postgres://postgres@127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={}",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data_str(), "-l", &log, "-o", &options, "-w", "-t", "60", "start"])?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if Client::connect(&format!("{}/postgres", self.base_url()), NoTls).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("the private cluster on port {} did not accept connections", self.port))
    }

    /// Stops the server at once (`-m immediate`: like a crash, in-flight transactions are lost).
    pub fn stop(&self) -> Result<(), String> {
        self.run("pg_ctl", &["-D", &self.data_str(), "-m", "immediate", "-w", "stop"])
    }

    /// Runs a PostgreSQL binary, as the `postgres` OS user when this process is root (initdb refuses root).
    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let path = self.bin.join(program);
        let output = if is_root() {
            Command::new("runuser").arg("-u").arg("postgres").arg("--").arg(&path).args(args).current_dir("/").output()
        } else {
            Command::new(&path).args(args).output()
        }
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// Gives the temp dir to the `postgres` user when running as root.
    fn own(&self) -> Result<(), String> {
        if !is_root() {
            return Ok(());
        }
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(self.dir.path())
            .status()
            .map_err(|e| format!("cannot run chown: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err("chown of the cluster dir failed (is there a postgres user?)".into())
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Uid:")).map(|u| u.split_whitespace().next() == Some("0")))
        .unwrap_or(false)
}

fn find_bin() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    candidates.sort();
    candidates.pop().or_else(|| {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(Path::new)
            .find(|p| p.join("initdb").exists())
            .map(Path::to_path_buf)
    })
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}
