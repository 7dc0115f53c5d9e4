//! The OpenAPI contract, checked from outside: schemathesis generates requests from `/openapi.json` for every
//! operation and sends them to the real `cfgledger serve` (its own SQLite store, its own port, an admin
//! bearer token). It fails on any 5xx, any status or content type the document does not list for the
//! operation, any body that does not match its schema, data the document says is invalid but the server
//! accepts, and a route that answers without the token it documents.
//!
//! schemathesis is pinned (`REQUIREMENT`) and installed by the test itself from PyPI into a virtual
//! environment under the target directory, with the Python 3.12 the MCP Gateway tests use
//! (`support::gateway::find_python312`). The run is bounded by the number of examples per operation, not by
//! time, and derandomized (`--generation-deterministic`, no example database), so that two runs send the
//! same requests. Run it alone with `cargo test --test contract`.

mod support;

use serde_json::Value;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::Store;

/// The one package, pinned: the flags below and the checks' names are those of this version.
const REQUIREMENT: &str = "schemathesis==4.32.5";

/// Examples per operation and phase. With the coverage phase's own boundary cases this is about 2,200
/// requests over the 68 operations, 2 to 2.5 minutes on two busy cores with the debug build.
const MAX_EXAMPLES: &str = "5";

/// Not a threshold of the contract: a guard against a hung run, which fails the test loudly.
const HANG_GUARD: Duration = Duration::from_secs(20 * 60);

/// How much of schemathesis's failure report a failed test prints.
const REPORT_CHARS: usize = 60_000;

fn venv_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().expect("CARGO_TARGET_TMPDIR has a parent directory").join("schemathesis-venv-4.32.5")
}

/// The venv's `st`, installed on first use per build directory and reused afterwards.
fn schemathesis() -> PathBuf {
    static ST: OnceLock<PathBuf> = OnceLock::new();
    ST.get_or_init(install).clone()
}

fn install() -> PathBuf {
    let venv = venv_dir();
    let st = venv.join("bin").join("st");
    // Written only after pip succeeded: a venv without it is half made and is rebuilt.
    let marker = venv.join(".cfgledger-installed");
    let parent = venv.parent().expect("the venv directory has a parent");
    fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    let lock_path = parent.join("schemathesis-venv-4.32.5.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("open the lock file {}: {e}", lock_path.display()));
    // See support/gateway.rs: `File::lock` is within the toolchain the tests run on.
    #[allow(clippy::incompatible_msrv)]
    let locked = lock.lock();
    locked.unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    if fs::read_to_string(&marker).is_ok_and(|m| m.trim() == REQUIREMENT) && st.exists() {
        return st;
    }
    let base = support::gateway::find_python312();
    if venv.exists() {
        fs::remove_dir_all(&venv).unwrap_or_else(|e| panic!("remove the half-made venv {}: {e}", venv.display()));
    }
    let out = Command::new(&base)
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap_or_else(|e| panic!("run {} -m venv: {e}", base.display()));
    assert!(
        out.status.success(),
        "could not create schemathesis's virtual environment with {} -m venv {}: {}",
        base.display(),
        venv.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let python = venv.join("bin").join("python");
    let out = Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "-q", REQUIREMENT])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {} -m pip: {e}", python.display()));
    assert!(
        out.status.success(),
        "pip could not install {REQUIREMENT} into {}; the contract test needs it from PyPI (check the network \
         access to PyPI, PIP_INDEX_URL or pip.conf):\n{}",
        venv.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    fs::write(&marker, format!("{REQUIREMENT}\n")).unwrap_or_else(|e| panic!("write {}: {e}", marker.display()));
    st
}

/// `cfgledger serve` on its own store and port, killed on drop; its stderr goes to a file for the report.
struct Served {
    child: Child,
    url: String,
    stderr: PathBuf,
}

impl Served {
    fn start(store: &Store) -> Served {
        let stderr = store.dir().join("serve.stderr");
        let file = fs::File::create(&stderr).expect("create serve.stderr");
        let mut child = store
            .cmd()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .expect("serve starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("serve's stdout is piped");
        BufReader::new(stdout).read_line(&mut line).expect("serve prints a first line");
        let url = line
            .trim()
            .strip_prefix("cfgledger listening on ")
            .unwrap_or_else(|| {
                panic!("serve's listening line, not {line:?}: {}", fs::read_to_string(&stderr).unwrap_or_default())
            })
            .to_string();
        Served { child, url, stderr }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The part of schemathesis's output from its failure report on, cut to `REPORT_CHARS`.
fn failure_report(output: &str) -> String {
    let from = output.find("= FAILURES =").or_else(|| output.find("= ERRORS =")).unwrap_or(0);
    let start = output[..from].rfind('\n').map_or(0, |n| n + 1);
    let report = &output[start..];
    if report.len() <= REPORT_CHARS {
        return report.to_string();
    }
    let mut end = REPORT_CHARS;
    while !report.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n... (cut: the whole output is in the test's temporary directory)", &report[..end])
}

/// Every check that failed, with the operations it failed on, from the JSON report.
fn failed_checks(report: &Value) -> Vec<String> {
    let failures = report["failures"].as_array().cloned().unwrap_or_default();
    failures
        .iter()
        .map(|f| {
            let operations: Vec<&str> =
                f["operations"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            format!(
                "{} {} on {}",
                f["code"].as_str().unwrap_or("?"),
                f["title"].as_str().unwrap_or("?"),
                operations.join(", ")
            )
        })
        .collect()
}

#[test]
fn every_operation_answers_as_the_openapi_document_says() {
    let st = schemathesis();
    let store = Store::with_builtin_catalog("");
    let server = Served::start(&store);
    let token =
        store.ok(&["token", "issue", "--sub", "contract", "--role", "platform_admin"]).stdout.trim().to_string();
    let document: Value = ureq::get(&format!("{}/openapi.json", server.url))
        .call()
        .expect("GET /openapi.json")
        .into_json()
        .expect("the document is JSON");
    let operations: usize =
        document["paths"].as_object().expect("paths").values().map(|p| p.as_object().map_or(0, |o| o.len())).sum();

    let work = store.dir().join("schemathesis");
    fs::create_dir_all(&work).expect("create the schemathesis directory");
    let report_path = work.join("report.json");
    let output_path = work.join("output.txt");
    let output = fs::File::create(&output_path).expect("create output.txt");
    let started = Instant::now();
    let mut run = Command::new(&st)
        .current_dir(&work)
        .env("HOME", &work)
        .env("NO_COLOR", "1")
        .arg("--config-file")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/contract.toml"))
        .arg("run")
        .arg(format!("{}/openapi.json", server.url))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // The checks are chosen in tests/contract.toml, with the operations that need an exception.
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES])
        // Derandomized, and without an example database (which it implies): every run sends the same cases.
        .arg("--generation-deterministic")
        .arg("--continue-on-failure")
        // One worker: the requests then reach the store in the same order at every run.
        .args(["--workers", "1"])
        .args(["--request-timeout", "30"])
        .args(["--suppress-health-check", "all"])
        .arg("--no-color")
        .args(["--report", "json", "--report-json-path"])
        .arg(&report_path)
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("clone the output file"))
        .stderr(output)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", st.display()));
    let mut status = None;
    let finished = support::wait_for(HANG_GUARD, || {
        status = run.try_wait().expect("wait for schemathesis");
        status.is_some()
    });
    if !finished {
        let _ = run.kill();
        let _ = run.wait();
        panic!("schemathesis did not finish within {HANG_GUARD:?}; its output so far is in {}", output_path.display());
    }
    let status = status.expect("schemathesis finished");
    let text = fs::read_to_string(&output_path).unwrap_or_default();
    let report: Value = fs::read_to_string(&report_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("schemathesis wrote no JSON report ({status}):\n{}", failure_report(&text)));
    eprintln!(
        "schemathesis: {} test cases over {} operations in {:.0?}",
        report["test_cases"]["generated"],
        report["operations"]["tested"],
        started.elapsed()
    );
    let failed = failed_checks(&report);
    assert!(
        status.success() && failed.is_empty() && report["errors"].as_array().is_none_or(Vec::is_empty),
        "schemathesis found that the server and its OpenAPI document disagree ({status}):\n- {}\n\n{}\n\
         --- the last lines of serve's log ---\n{}",
        failed.join("\n- "),
        failure_report(&text),
        server.log_tail()
    );
    // A run that tested nothing would pass the checks above: every documented operation must have been sent.
    assert_eq!(report["operations"]["tested"].as_u64(), Some(operations as u64), "{}", report["operations"]);
    assert!(report["test_cases"]["generated"].as_u64().unwrap_or(0) >= operations as u64, "{}", report["test_cases"]);
}
