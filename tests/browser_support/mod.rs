//! The web UI's browser tests: Debian's `chromium`, headless, driven through its `chromedriver` (WebDriver,
//! with fantoccini) from plain synchronous tests. Each [`Browser`] has its own chromedriver on its own port
//! and its own profile directory. A missing browser is installed (`apt-get install chromium
//! chromium-driver`, once, under a lock); if that fails the test fails loudly, it never skips.
//!
//! [`Browser::check_page`] saves screenshots at 1280 and 390 px wide under
//! `target/tmp/ui-screenshots/<test>/` and runs axe-core (installed with `npm ci` from the lockfile in
//! `tests/browser/`) on the page, failing on any serious or critical violation.

// Shared by several test binaries, each using a part.
#![allow(dead_code)]

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a wait for the page lasts before the test fails with what it waited for.
const PATIENCE: Duration = Duration::from_secs(20);

fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Serializes the installs of several test binaries: one installs, the others wait and reuse it.
fn locked<T>(name: &str, f: impl FnOnce() -> T) -> T {
    std::fs::create_dir_all(tmp()).expect("create target/tmp");
    let path = tmp().join(format!("{name}.lock"));
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).expect("open the lock file");
    // `File::lock` is stable since Rust 1.89 (above the workspace's rust-version, which only the library claims).
    #[allow(clippy::incompatible_msrv)]
    file.lock().unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
    let out = f();
    drop(file);
    out
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Debian's chromium and chromedriver, installed when missing.
fn ensure_browser() {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return;
    }
    locked("chromium-install", || {
        if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
            return;
        }
        eprintln!("installing Debian's chromium and chromium-driver for the browser tests");
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "chromium", "chromium-driver"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output()
        };
        if !install().is_ok_and(|o| o.status.success()) {
            run(Command::new("apt-get").arg("update").env("DEBIAN_FRONTEND", "noninteractive"), "apt-get update");
            run(
                Command::new("apt-get")
                    .args(["install", "-y", "--no-install-recommends", "chromium", "chromium-driver"])
                    .env("DEBIAN_FRONTEND", "noninteractive"),
                "apt-get install chromium chromium-driver (the browser tests need Debian's chromium)",
            );
        }
        assert!(Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(), "chromium is still missing");
    });
}

/// axe-core's script, installed from `tests/browser/package-lock.json` with `npm ci`.
fn axe_source() -> &'static str {
    static AXE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    AXE.get_or_init(|| {
        let dir = tmp().join("browser-deps");
        let script = dir.join("node_modules/axe-core/axe.min.js");
        let lock_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/package-lock.json");
        let wanted = std::fs::read(&lock_src).expect("read tests/browser/package-lock.json");
        locked("browser-deps", || {
            let installed = std::fs::read(dir.join("package-lock.json")).ok();
            if !script.exists() || installed.as_deref() != Some(&wanted[..]) {
                std::fs::create_dir_all(&dir).expect("create target/tmp/browser-deps");
                for f in ["package.json", "package-lock.json"] {
                    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser").join(f), dir.join(f))
                        .expect("copy the browser tests' package files");
                }
                run(
                    Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"]).current_dir(&dir),
                    "npm ci (axe-core for the accessibility checks; needs Node.js and npm)",
                );
            }
        });
        std::fs::read_to_string(&script).unwrap_or_else(|e| panic!("read {}: {e}", script.display()))
    })
}

/// Calls `f` until it gives a value or `PATIENCE` has passed (then `None`): the one wait of these tests, a
/// condition with a deadline, polled every 50 ms.
fn poll<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A headless chromium on one server's web UI.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
    base: String,
    shots: PathBuf,
    shot_count: std::cell::Cell<u32>,
}

impl Browser {
    /// A browser for the server at `base` (`http://127.0.0.1:PORT`); `test` names its screenshot folder.
    pub fn start(base: &str, test: &str) -> Browser {
        ensure_browser();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("a profile directory");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                         format!("--user-data-dir={}", profile.path().display())],
            }
        });
        let caps = caps.as_object().cloned().expect("an object");
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        let client = poll(|| {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            rt.block_on(ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url))
                .map_err(|e| last = Some(e.to_string()))
                .ok()
        })
        .unwrap_or_else(|| panic!("cannot start a chromium session through chromedriver: {last:?}"));
        // Only this run's screenshots: an earlier run's would be taken for pages this one saw.
        let shots = tmp().join("ui-screenshots").join(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("create the screenshot folder");
        let b = Browser {
            rt,
            client: Some(client),
            driver,
            _profile: profile,
            base: base.trim_end_matches('/').to_string(),
            shots,
            shot_count: std::cell::Cell::new(0),
        };
        // axe-core on a page of 850 settings takes seconds on a busy machine; WebDriver's default is 30 s.
        let timeouts = fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(300)),
            Some(Duration::from_secs(120)),
            Some(Duration::ZERO),
        );
        b.rt.block_on(b.c().update_timeouts(timeouts)).expect("set the session's timeouts");
        b.size(1280, 900);
        b
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("an open session")
    }

    /// Runs a future of the session (for what the helpers below do not cover).
    pub fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    pub fn client(&self) -> &Client {
        self.c()
    }

    pub fn size(&self, width: u32, height: u32) {
        self.rt.block_on(self.c().set_window_size(width, height)).expect("resize the window");
    }

    /// Opens a path of the server (or an absolute URL).
    pub fn goto(&self, path: &str) {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) };
        self.rt.block_on(self.c().goto(&url)).unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    pub fn url(&self) -> String {
        self.rt.block_on(self.c().current_url()).expect("the current URL").to_string()
    }

    /// Signs in through the login form and waits for the settings page.
    pub fn login(&self, user: &str, password: &str) {
        self.goto("/ui/login");
        self.fill("#username", user);
        self.fill("#password", password);
        self.click("form[action='/ui/login'] button[type=submit]");
        self.wait("table#settings");
    }

    /// Waits for an element; fails naming the selector, the URL and the page's text.
    pub fn wait(&self, css: &str) -> fantoccini::elements::Element {
        poll(|| self.rt.block_on(self.c().find(Locator::Css(css))).ok())
            .unwrap_or_else(|| panic!("no element matches {css} on {}\npage text:\n{}", self.url(), self.body_text()))
    }

    pub fn exists(&self, css: &str) -> bool {
        self.rt.block_on(self.c().find_all(Locator::Css(css))).map(|v| !v.is_empty()).unwrap_or(false)
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> usize {
        self.rt.block_on(self.c().find_all(Locator::Css(css))).map(|v| v.len()).unwrap_or(0)
    }

    pub fn click(&self, css: &str) {
        let e = self.wait(css);
        self.rt.block_on(e.click()).unwrap_or_else(|err| panic!("click {css}: {err}"));
    }

    /// Replaces a field's text, typed key by key; then fires `input` as a user's typing would (clearing a
    /// field fires none, and the page's live filters listen for it).
    pub fn fill(&self, css: &str, text: &str) {
        let e = self.wait(css);
        self.rt
            .block_on(async {
                e.clear().await?;
                e.send_keys(text).await
            })
            .unwrap_or_else(|err| panic!("type into {css}: {err}"));
        self.fire(css, "input");
    }

    /// Presses and releases a key where the focus is (as a keyboard user would).
    pub fn press(&self, key: fantoccini::key::Key) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let value = char::from(key);
        let actions = KeyActions::new("keyboard".into()).then(KeyAction::Down { value }).then(KeyAction::Up { value });
        self.rt.block_on(self.c().perform_actions(actions)).expect("press a key");
    }

    /// Types one character where the focus is.
    pub fn press_char(&self, value: char) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let actions = KeyActions::new("keyboard".into()).then(KeyAction::Down { value }).then(KeyAction::Up { value });
        self.rt.block_on(self.c().perform_actions(actions)).expect("type a character");
    }

    /// The focused element's description: `tag#id.class "text"`.
    pub fn focused(&self) -> String {
        let script = "const a = document.activeElement; \
            return a ? `${a.tagName.toLowerCase()}#${a.id}.${a.className} ${JSON.stringify((a.textContent || '').trim().slice(0, 40))}` : '';";
        self.js(script, vec![]).as_str().unwrap_or("").to_string()
    }

    /// Dispatches a DOM event on the element.
    pub fn fire(&self, css: &str, event: &str) {
        let script = "const el = document.querySelector(arguments[0]); \
            if (!el) throw new Error('no element ' + arguments[0]); \
            el.dispatchEvent(new Event(arguments[1], {bubbles: true}));";
        self.js(script, vec![json!(css), json!(event)]);
    }

    /// Picks an option of a select by its value.
    pub fn select(&self, css: &str, value: &str) {
        let e = self.wait(css);
        self.rt.block_on(e.select_by_value(value)).unwrap_or_else(|err| panic!("select {value} in {css}: {err}"));
    }

    pub fn text(&self, css: &str) -> String {
        let e = self.wait(css);
        self.rt.block_on(e.text()).unwrap_or_else(|err| panic!("text of {css}: {err}"))
    }

    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        let e = self.wait(css);
        self.rt.block_on(e.attr(name)).unwrap_or_else(|err| panic!("attribute {name} of {css}: {err}"))
    }

    /// Whether the element is shown (not `hidden`, not `display: none`).
    pub fn displayed(&self, css: &str) -> bool {
        let e = self.wait(css);
        self.rt.block_on(e.is_displayed()).unwrap_or(false)
    }

    /// Waits until the element's text contains `needle`.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        let mut seen = None;
        let text = || self.rt.block_on(async { self.c().find(Locator::Css(css)).await?.text().await }).ok();
        poll(|| {
            seen = text();
            seen.clone().filter(|t| t.contains(needle))
        })
        .unwrap_or_else(|| match &seen {
            Some(t) => panic!("{css} never contained {needle:?}; it says {t:?} (on {})", self.url()),
            None => {
                panic!("no element {css} containing {needle:?} on {}\npage text:\n{}", self.url(), self.body_text())
            }
        })
    }

    /// Waits until `script` (a function body returning a boolean) returns true.
    pub fn wait_js(&self, what: &str, script: &str) {
        let done = poll(|| (self.js(script, vec![]) == Value::Bool(true)).then_some(()));
        assert!(done.is_some(), "waited in vain for {what} on {}", self.url());
    }

    pub fn body_text(&self) -> String {
        self.js("return document.body ? document.body.innerText : ''", vec![]).as_str().unwrap_or("").to_string()
    }

    /// The page's markup as the browser holds it now.
    pub fn source(&self) -> String {
        self.rt.block_on(self.c().source()).expect("the page source")
    }

    /// Runs a script in the page (WebDriver's scripts are not subject to the page's CSP).
    pub fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.rt.block_on(self.c().execute(script, args)).unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// A same-origin `fetch` from the page, with its cookies: (status, body text).
    pub fn fetch(&self, path: &str) -> (u16, String) {
        let script = "const [url, done] = arguments; \
            fetch(url, {credentials: 'same-origin'}).then(async r => done([r.status, await r.text()])) \
            .catch(e => done([0, String(e)]));";
        let v = self.rt.block_on(self.c().execute_async(script, vec![json!(path)])).expect("fetch from the page");
        (v[0].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(0), v[1].as_str().unwrap_or("").to_string())
    }

    /// A same-origin request with any method, body and headers, sent from the page with its cookies (a
    /// forged request, when the test leaves out the CSRF token): (status, body text).
    pub fn request(&self, method: &str, path: &str, body: Option<&str>, headers: Value) -> (u16, String) {
        let script = "const [method, url, body, headers, done] = arguments; \
            fetch(url, {method, body, headers, credentials: 'same-origin'}) \
            .then(async r => done([r.status, await r.text()])).catch(e => done([0, String(e)]));";
        let args = vec![json!(method), json!(path), json!(body), headers];
        let v = self.rt.block_on(self.c().execute_async(script, args)).expect("request from the page");
        (v[0].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(0), v[1].as_str().unwrap_or("").to_string())
    }

    /// Saves a screenshot as `<n>-<name>.png` in the test's folder, and returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.rt.block_on(self.c().screenshot()).expect("a screenshot");
        let n = self.shot_count.get() + 1;
        self.shot_count.set(n);
        let path = self.shots.join(format!("{n:02}-{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// Runs axe-core on the page; fails listing every serious or critical violation.
    pub fn axe(&self, name: &str) {
        self.js(axe_source(), vec![]);
        let script = "const done = arguments[0]; \
            axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map(v => \
              ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))})))) \
            .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));";
        let found = self.rt.block_on(self.c().execute_async(script, vec![])).expect("run axe-core");
        let bad: Vec<&Value> = found
            .as_array()
            .map(|v| v.iter().filter(|x| matches!(x["impact"].as_str(), Some("serious" | "critical"))).collect())
            .unwrap_or_default();
        assert!(bad.is_empty(), "page {name} ({}) has serious accessibility violations:\n{bad:#?}", self.url());
    }

    /// The checks every page gets: a screenshot and axe-core at 1280 px, then the same at 390 px.
    pub fn check_page(&self, name: &str) {
        // The screenshots show what the test is looking at: the focused control, if any.
        self.js(
            "const a = document.activeElement; if (a && a !== document.body) a.scrollIntoView({block: 'center'});",
            vec![],
        );
        self.size(1280, 900);
        self.screenshot(&format!("{name}-1280"));
        self.axe(name);
        self.size(390, 844);
        self.js(
            "const a = document.activeElement; if (a && a !== document.body) a.scrollIntoView({block: 'center'});",
            vec![],
        );
        self.screenshot(&format!("{name}-390"));
        self.axe(&format!("{name} at 390 px"));
        let overflow = self.js("return document.documentElement.scrollWidth - window.innerWidth", vec![]);
        assert!(
            overflow.as_i64().unwrap_or(0) <= 2,
            "page {name} scrolls sideways at 390 px (by {overflow} px); wrap wide content"
        );
        self.size(1280, 900);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), c.close()).await });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Sends an agent's heartbeat every second until dropped (the list shows only recent ones); dropping it
/// stops it at once.
pub struct FakeAgent {
    _stop: std::sync::mpsc::Sender<()>,
}

impl FakeAgent {
    pub fn start(url: &str, token: &str, body: Value) -> FakeAgent {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (url, auth) = (format!("{url}/admin/instances/heartbeat"), format!("Bearer {token}"));
        std::thread::spawn(move || loop {
            let r = ureq::post(&url).set("Authorization", &auth).send_json(body.clone());
            assert!(r.is_ok(), "heartbeat refused: {r:?}");
            // The next beat in a second, unless the sender is dropped first.
            if !matches!(
                stopped.recv_timeout(std::time::Duration::from_secs(1)),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout)
            ) {
                break;
            }
        });
        FakeAgent { _stop: stop }
    }
}
