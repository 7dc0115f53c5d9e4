//! TLS end to end, with a CA made in the test (rcgen): `serve --tls-cert --tls-key` spoken to by the CLI's
//! `--server https://` with and without `--ca-file`, by a plain-http client, by the web UI's login and by the
//! client crate; the flags refused with the file named; and PostgreSQL over TLS on private clusters started
//! from the installed binaries, with `sslmode=require|verify-ca|verify-full` and `sslrootcert`.

mod api_support;
mod pg;
mod serving;

use api_support::Store;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A CA and a server certificate it signed, written as PEM files into a directory.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    cert_pem: String,
    key_pem: String,
}

impl Pki {
    /// A CA named `name` and a server certificate for `hosts` (DNS names or IP addresses), in `dir`.
    fn new(dir: &Path, name: &str, hosts: &[&str]) -> Pki {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, format!("cfgledger test CA {name}"));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("the CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("a server key");
        let mut params =
            CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>()).expect("server parameters");
        params.distinguished_name.push(DnType::CommonName, hosts[0]);
        let cert = params.signed_by(&key, &issuer).expect("the server certificate");
        let pki = Pki {
            ca: dir.join(format!("{name}-ca.pem")),
            cert: dir.join(format!("{name}-server.pem")),
            key: dir.join(format!("{name}-server.key")),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        std::fs::write(&pki.ca, ca_cert.pem()).expect("write the CA");
        std::fs::write(&pki.cert, &pki.cert_pem).expect("write the certificate");
        std::fs::write(&pki.key, &pki.key_pem).expect("write the key");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pki.key, std::fs::Permissions::from_mode(0o600)).expect("chmod the key");
        pki
    }

    fn tls_args(&self) -> Vec<String> {
        vec!["--tls-cert".into(), self.cert.display().to_string(), "--tls-key".into(), self.key.display().to_string()]
    }
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `cfgledger --server URL [--ca-file CA] ARGS` with `token` in the environment.
fn remote(store: &Store, url: &str, ca: Option<&Path>, token: &str, args: &[&str]) -> Output {
    let mut c = store.cmd();
    c.env("CFGLEDGER_TOKEN", token).args(["--server", url]);
    if let Some(ca) = ca {
        c.arg("--ca-file").arg(ca);
    }
    c.args(args).output().expect("the cfgledger binary runs")
}

/// A ureq agent trusting `ca`, as the CLI builds it.
fn https_agent(url: &str, ca: &Path) -> ureq::Agent {
    let builder = ureq::AgentBuilder::new().redirects(0).timeout(Duration::from_secs(30));
    cfgledger_client::tls::agent_builder(builder, url, Some(ca)).expect("the CA file is usable").build()
}

#[test]
fn https_serves_the_cli_with_the_ca_file_and_refuses_it_without() {
    let store = Store::new("LOG_LEVEL=info");
    let pki = Pki::new(store.dir(), "main", &["localhost", "127.0.0.1"]);
    let other = Pki::new(store.dir(), "other", &["localhost", "127.0.0.1"]);
    let args = pki.tls_args();
    let server = store.serve(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(server.url.starts_with("https://127.0.0.1:"), "the listening line says https: {}", server.url);
    let admin = store.token("admin", "platform_admin");

    // Through --server https:// with the CA: a read and a write, exactly as over http.
    let out = remote(&store, &server.url, Some(&pki.ca), &admin, &["config", "get", "LOG_LEVEL"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(text(&out).0.trim(), "info");
    let out = remote(&store, &server.url, Some(&pki.ca), &admin, &["config", "set", "LOG_LEVEL", "debug"]);
    assert!(out.status.success(), "{:?}", text(&out));
    // The CA also comes from the environment.
    let out = store
        .cmd()
        .env("CFGLEDGER_TOKEN", &admin)
        .env("CFGLEDGER_CA_FILE", &pki.ca)
        .args(["--server", &server.url, "config", "get", "LOG_LEVEL"])
        .output()
        .expect("runs");
    assert_eq!(text(&out).0.trim(), "debug", "{:?}", text(&out));

    // Without it, or with another CA: unreachable (exit 3), saying it is the certificate and what fixes it.
    for ca in [None, Some(other.ca.as_path())] {
        let out = remote(&store, &server.url, ca, &admin, &["config", "get", "LOG_LEVEL"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(stderr.contains("invalid peer certificate") && stderr.contains("--ca-file"), "{stderr}");
    }

    // A CA file that is not one: bad input (exit 2), nothing sent.
    let bogus = store.dir().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate\n").unwrap();
    let out = remote(&store, &server.url, Some(&bogus), &admin, &["config", "set", "LOG_LEVEL", "warn"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("holds no certificate"), "{:?}", text(&out));

    // Plain http to the TLS port fails (the server never answers HTTP there).
    let plain = server.url.replacen("https://", "http://", 1);
    let out = remote(&store, &plain, None, &admin, &["config", "get", "LOG_LEVEL"]);
    assert_eq!(out.status.code(), Some(3), "{:?}", text(&out));
    assert!(text(&out).0.is_empty());
    match ureq::get(&format!("{plain}/health")).timeout(Duration::from_secs(10)).call() {
        Err(ureq::Error::Transport(_)) => {}
        other => panic!("plain http to the TLS port must fail, got {other:?}"),
    }

    // https:// to a plain http server fails too, saying so.
    let plain_server = store.serve(&[]);
    let health = ureq::get(&format!("{}/health", plain_server.url)).call().expect("plain health");
    assert_eq!(health.header("strict-transport-security"), None, "HSTS only over TLS");
    let wrong = plain_server.url.replacen("http://", "https://", 1);
    let out = remote(&store, &wrong, Some(&pki.ca), &admin, &["config", "get", "LOG_LEVEL"]);
    assert_eq!(out.status.code(), Some(3), "{:?}", text(&out));
    assert!(text(&out).1.contains("plain http://"), "{:?}", text(&out));

    // Nothing the refused commands sent was written: debug is still the value.
    let out = remote(&store, &server.url, Some(&pki.ca), &admin, &["config", "get", "LOG_LEVEL"]);
    assert_eq!(text(&out).0.trim(), "debug");
}

#[test]
fn the_ui_session_cookie_is_secure_over_tls() {
    let store = Store::new("");
    let pki = Pki::new(store.dir(), "ui", &["localhost", "127.0.0.1"]);
    store.add_user("ada", "platform_admin", "correct horse battery");
    let args = pki.tls_args();
    let server = store.serve(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let agent = https_agent(&server.url, &pki.ca);
    let answer = agent
        .post(&format!("{}/ui/login", server.url))
        .send_form(&[("username", "ada"), ("password", "correct horse battery"), ("next", "/ui/settings")])
        .expect("a login answer");
    assert_eq!(answer.status(), 303);
    let cookie = answer.header("set-cookie").expect("a session cookie").to_string();
    assert!(cookie.starts_with("cfgledger_session="), "{cookie}");
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.split("; ").any(|a| a == attribute), "{attribute} missing from {cookie}");
    }
    // The same server's API answers over the same TLS, with the peer's address known (audit, limits).
    let health = agent.get(&format!("{}/health", server.url)).call().expect("health over https");
    assert_eq!(health.status(), 200);
    // Browsers are told to keep to HTTPS here, on the API's answers and the UI's alike.
    assert_eq!(health.header("strict-transport-security"), Some("max-age=31536000"));
    assert_eq!(answer.header("strict-transport-security"), Some("max-age=31536000"));
}

#[test]
fn an_https_server_shuts_down_gracefully_ending_its_watch_streams() {
    use std::io::Read;
    let store = Store::new("");
    let pki = Pki::new(store.dir(), "stop", &["localhost", "127.0.0.1"]);
    let child = store
        .cmd()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(pki.tls_args())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut server = serving::Server::from_child(child);
    let admin = store.token("admin", "platform_admin");
    let stream = https_agent(&server.url, &pki.ca)
        .get(&format!("{}/admin/config/watch", server.url))
        .set("Authorization", &format!("Bearer {admin}"))
        .call()
        .expect("a watch stream over https");
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    let (ended, read_all) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut body = String::new();
        let _ = stream.into_reader().read_to_string(&mut body);
        let _ = ended.send(body);
    });
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs").success());
    // The stream ends (the server closes it), and the process exits 0.
    let body = read_all.recv_timeout(Duration::from_secs(20)).expect("the stream ends after SIGTERM");
    assert!(body.contains("event: progress"), "the stream had started: {body}");
    let mut status = None;
    api_support::eventually("serve exits after SIGTERM", || {
        status = server.child.try_wait().expect("try_wait");
        status.is_some()
    });
    assert!(status.is_some_and(|s| s.success()), "serve exited {status:?}");
}

#[test]
fn the_client_crate_follows_an_https_server_with_the_ca_file() {
    let store = Store::new("LOG_LEVEL=info");
    let pki = Pki::new(store.dir(), "client", &["localhost", "127.0.0.1"]);
    let args = pki.tls_args();
    let server = store.serve(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let admin = store.token("admin", "platform_admin");
    let token = store.dir().join("reader.token");
    std::fs::write(&token, store.token("follower", "config_reader")).unwrap();
    let builder = || {
        cfgledger_client::Client::builder(&server.url, "mcpgateway")
            .token_file(&token)
            .heartbeat(None)
            .backoff(Duration::from_millis(50), Duration::from_millis(300))
    };

    // Without the CA: a certificate error, said so.
    let Err(err) = builder().require_fresh(true).start() else { panic!("a start without the CA") };
    let message = err.to_string();
    assert!(matches!(err, cfgledger_client::StartError::Unavailable(_)), "{message}");
    assert!(message.contains("invalid peer certificate") && message.contains("--ca-file"), "{message}");
    // A CA file that cannot be read fails the start as a configuration error.
    let Err(err) = builder().ca_file(store.dir().join("missing.pem")).start() else {
        panic!("a start with a missing CA file")
    };
    assert!(matches!(&err, cfgledger_client::StartError::Config(m) if m.contains("missing.pem")), "{err}");

    let client = builder().ca_file(&pki.ca).start().expect("the client starts over https");
    assert_eq!(client.snapshot().str("LOG_LEVEL"), Some("info"));
    let out = remote(&store, &server.url, Some(&pki.ca), &admin, &["config", "set", "LOG_LEVEL", "warn"]);
    assert!(out.status.success(), "{:?}", text(&out));
    api_support::eventually("the change over the https watch stream", || {
        client.snapshot().str("LOG_LEVEL") == Some("warn")
    });
}

#[test]
fn the_agent_renders_from_an_https_server_with_the_ca_file() {
    let store = Store::new("LOG_LEVEL=info");
    let pki = Pki::new(store.dir(), "agent", &["localhost", "127.0.0.1"]);
    let args = pki.tls_args();
    let server = store.serve(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let reader = store.token("agent", "config_reader");
    let out_file = store.dir().join("app.env");
    // The slim agent binary, as an application's host runs it.
    let agent = |ca: Option<&Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cfgledger-agent"));
        c.current_dir(store.dir())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", store.dir())
            .env("CFGLEDGER_TOKEN", &reader)
            .args(["--server", &server.url, "render", "--once", "--no-cache", "--out"])
            .arg(&out_file);
        if let Some(ca) = ca {
            c.env("CFGLEDGER_CA_FILE", ca);
        }
        c.output().expect("the agent runs")
    };
    let out = agent(None);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("invalid peer certificate") && stderr.contains("CFGLEDGER_CA_FILE"), "{stderr}");
    assert!(!out_file.exists(), "nothing rendered without the CA");
    let out = agent(Some(&pki.ca));
    assert!(out.status.success(), "{:?}", text(&out));
    let rendered = std::fs::read_to_string(&out_file).expect("the rendered file");
    assert!(rendered.lines().any(|l| l == "LOG_LEVEL='info'"), "{rendered}");
}

#[test]
fn serve_refuses_tls_flags_that_cannot_work_and_prints_no_key() {
    let store = Store::new("");
    let pki = Pki::new(store.dir(), "flags", &["localhost"]);
    let other = Pki::new(store.dir(), "stranger", &["localhost"]);
    let cert = pki.cert.display().to_string();
    let key = pki.key.display().to_string();
    let serve = |args: &[&str]| {
        let out = store
            .cmd()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("the cfgledger binary runs");
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{args:?} printed {stdout}");
        // No key material, whichever key was given.
        for pem in [&pki.key_pem, &other.key_pem] {
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            assert!(!stderr.contains(&body[..40]), "{args:?} printed key material: {stderr}");
        }
        assert!(!stderr.contains("PRIVATE KEY-----"), "{stderr}");
        stderr
    };
    let e = serve(&["--tls-cert", &cert]);
    assert!(e.contains("--tls-key"), "{e}");
    let e = serve(&["--tls-key", &key]);
    assert!(e.contains("--tls-cert"), "{e}");
    let e = serve(&["--tls-cert", "/nonexistent/cert.pem", "--tls-key", &key]);
    assert!(e.contains("cannot read --tls-cert /nonexistent/cert.pem"), "{e}");
    let e = serve(&["--tls-cert", &cert, "--tls-key", "/nonexistent/key.pem"]);
    assert!(e.contains("cannot read --tls-key /nonexistent/key.pem"), "{e}");
    // The certificate given as the key, and the key given as the certificate.
    let e = serve(&["--tls-cert", &cert, "--tls-key", &cert]);
    assert!(e.contains("holds no private key"), "{e}");
    let e = serve(&["--tls-cert", &key, "--tls-key", &key]);
    assert!(e.contains("holds no certificate"), "{e}");
    // Another certificate's key.
    let stranger_key = other.key.display().to_string();
    let e = serve(&["--tls-cert", &cert, "--tls-key", &stranger_key]);
    assert!(e.contains("cannot serve TLS") && e.contains(&stranger_key), "{e}");
    assert!(!e.contains("warning: --tls-key"), "a 0600 key is not warned about: {e}");
    // A key others may read is warned about (and still refused here, being another certificate's).
    std::fs::set_permissions(&other.key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let e = serve(&["--tls-cert", &cert, "--tls-key", &stranger_key]);
    assert!(
        e.contains(&format!("warning: --tls-key {stranger_key} may be read by users other than its owner (mode 0644)")),
        "{e}"
    );
    // Refused before the store was opened: no store was created.
    assert!(!store.db_path().exists(), "a refused serve created the store");
}

// ---- PostgreSQL over TLS ----------------------------------------------------------------------------------

/// The binary on the PostgreSQL store at `url` (instead of the store's SQLite file).
fn pg_cmd(store: &Store, url: &str) -> Command {
    let mut c = Command::new(api_support::BIN);
    c.current_dir(store.dir())
        .env_clear()
        .env("CFGLEDGER_CATALOG", cfgledger_events::testing::SUITE_CATALOG_PATH)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", store.dir())
        .env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", api_support::ENCRYPTION_SECRET)
        .args(["--db", url, "--env-file", ".env", "--actor", "tester"]);
    c
}

fn pg_run(store: &Store, url: &str, args: &[&str]) -> Output {
    pg_cmd(store, url).args(args).output().expect("the cfgledger binary runs")
}

/// A private cluster serving TLS with `pki`'s certificate (`ssl = on`, TLS 1.2 at least).
fn tls_cluster(pki: &Pki) -> pg::Cluster {
    pg::Cluster::start_new_with(
        "ssl = on\nssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\nssl_min_protocol_version = 'TLSv1.2'",
        &[("server.pem", pki.cert_pem.as_bytes()), ("server.key", pki.key_pem.as_bytes())],
    )
    .unwrap_or_else(|e| panic!("a private PostgreSQL cluster with TLS: {e}"))
}

/// How many of cfgledger's connections to `db` are encrypted, and how many there are.
fn ssl_connections(db: &pg::TestDb) -> (i64, i64) {
    let row = db
        .client()
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.datname = current_database() AND a.application_name = 'cfgledger'",
            &[],
        )
        .expect("pg_stat_ssl");
    (row.get(0), row.get(1))
}

#[test]
fn postgres_over_tls_verifies_the_ca_and_the_host_name() {
    let store = Store::new("LOG_LEVEL=info");
    // The server's certificate names `localhost` only, so 127.0.0.1 passes verify-ca but not verify-full.
    let pki = Pki::new(store.dir(), "pg", &["localhost"]);
    let other = Pki::new(store.dir(), "pg-other", &["localhost"]);
    let cluster = tls_cluster(&pki);
    let db = pg::TestDb::on(&cluster.base_url());
    let ca = pki.ca.display().to_string();
    let by_name = format!("postgres://postgres@localhost:{}/{}", cluster.port, db.name);
    let by_ip = db.url();
    let url = |base: &str, query: &str| format!("{base}?{query}");

    // verify-full with the CA, by the certificate's name: the store is created, written and served.
    let full = url(&by_name, &format!("sslmode=verify-full&sslrootcert={ca}"));
    let out = pg_run(&store, &full, &["config", "set", "LOG_LEVEL", "debug"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let child = pg_cmd(&store, &full)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let served = serving::Server::from_child(child);
    // Every connection it holds (the write connection, the tailer's LISTEN, readers) is encrypted.
    api_support::eventually("serve's connections, all over TLS", || {
        let (ssl, all) = ssl_connections(&db);
        ssl >= 2 && ssl == all
    });
    let health = ureq::get(&format!("{}/health", served.url)).call().expect("health");
    assert_eq!(health.status(), 200);
    drop(served);

    // verify-full by IP: the certificate does not name 127.0.0.1.
    let out =
        pg_run(&store, &url(&by_ip, &format!("sslmode=verify-full&sslrootcert={ca}")), &["config", "get", "LOG_LEVEL"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("certificate not valid for name \"127.0.0.1\""), "{stderr}");
    // verify-ca checks the chain only, so the same connection works.
    let out =
        pg_run(&store, &url(&by_ip, &format!("sslmode=verify-ca&sslrootcert={ca}")), &["config", "get", "LOG_LEVEL"]);
    assert_eq!(text(&out).0.trim(), "debug", "{:?}", text(&out));

    // Another CA: refused, naming the certificate as the reason; with require, libpq's rule: a root
    // certificate given makes require check the chain.
    let stranger = other.ca.display().to_string();
    for mode in ["verify-full", "verify-ca", "require"] {
        let out = pg_run(
            &store,
            &url(&by_name, &format!("sslmode={mode}&sslrootcert={stranger}")),
            &["config", "get", "LOG_LEVEL"],
        );
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(3), "{mode}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(stderr.contains("invalid peer certificate") && stderr.contains("UnknownIssuer"), "{mode}: {stderr}");
    }

    // require without a root certificate encrypts without checking; so does the default (prefer).
    for query in ["sslmode=require", "connect_timeout=5"] {
        let out = pg_run(&store, &url(&by_ip, query), &["config", "get", "LOG_LEVEL"]);
        assert_eq!(text(&out).0.trim(), "debug", "{query}: {:?}", text(&out));
    }

    // Bad parameters: bad input (exit 2) naming the parameter, nothing connected.
    let out = pg_run(&store, &url(&by_ip, "sslmode=allow"), &["config", "get", "LOG_LEVEL"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("sslmode expects"), "{:?}", text(&out));
    let out = pg_run(&store, &url(&by_ip, "sslmode=verify-full"), &["config", "get", "LOG_LEVEL"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("needs sslrootcert"), "{:?}", text(&out));
    let out = pg_run(
        &store,
        &url(&by_ip, "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
        &["config", "get", "LOG_LEVEL"],
    );
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("/nonexistent/ca.pem"), "{:?}", text(&out));
}

#[test]
fn postgres_require_fails_clearly_when_the_server_has_no_tls() {
    let store = Store::new("LOG_LEVEL=info");
    let cluster = pg::Cluster::start_new_with("ssl = off", &[])
        .unwrap_or_else(|e| panic!("a private PostgreSQL cluster without TLS: {e}"));
    let db = pg::TestDb::on(&cluster.base_url());
    let out = pg_run(&store, &format!("{}?sslmode=require", db.url()), &["config", "set", "LOG_LEVEL", "debug"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("server does not support TLS"), "{stderr}");
    // Nothing was created: the database holds no table.
    let tables: i64 = db
        .client()
        .query_one("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", &[])
        .expect("count")
        .get(0);
    assert_eq!(tables, 0, "a refused connection created the store");
    // prefer (the default) and disable fall back to plain, as libpq does.
    for query in ["sslmode=prefer", "sslmode=disable"] {
        let out = pg_run(&store, &format!("{}?{query}", db.url()), &["config", "set", "LOG_LEVEL", "debug"]);
        assert!(out.status.success(), "{query}: {:?}", text(&out));
    }
}
