//! `cfgledger agent render --out FILE`: keeps FILE in the application's own form (env, json or yaml) as
//! the namespace changes. Each new render is staged beside FILE (mode 0600), checked by `--check-cmd`, and
//! renamed over FILE only if the check passes; then `--reload-cmd` runs. A failed check leaves the old file
//! in place and is reported (stderr, exit code with `--once`, the heartbeat's error while it lasts); the
//! next change is tried again.

use crate::error::Error;
use crate::usecase::render::{format_text, RenderFormat};
use cfgledger_client::{Client, Snapshot};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RenderOptions {
    pub follow: cfgledger_client::Options,
    pub format: RenderFormat,
    pub out: PathBuf,
    /// Run on the staged file (`{}` in it, and `$CFGLEDGER_RENDERED`, name the staged file); a non-zero
    /// exit keeps the old file.
    pub check_cmd: Option<String>,
    /// Run after the file is replaced.
    pub reload_cmd: Option<String>,
    pub once: bool,
    /// How long a check or reload command may run.
    pub command_timeout: Duration,
}

/// What the file holds, for heartbeats: the configuration it was written from, and the last failure.
struct FileState {
    written: Option<Arc<Snapshot>>,
    error: Option<String>,
}

/// The lines that carry values (comments and blank lines dropped), so that a new header alone is no change.
fn body(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).collect()
}

/// A shell word holding `text` as it is.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Runs `sh -c CMD` with `{}` replaced by `staged`, and `$CFGLEDGER_RENDERED` and `$CFGLEDGER_OUT` set;
/// `Err` says how it failed.
fn run_command(
    what: &str,
    cmd: &str,
    staged: &std::path::Path,
    out: &std::path::Path,
    timeout: Duration,
) -> Result<(), String> {
    let line = cmd.replace("{}", &shell_quote(&staged.to_string_lossy()));
    let mut command = Command::new("sh");
    // Its own process group, so that a timeout stops whatever the shell started too.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .arg("-c")
        .arg(&line)
        .env("CFGLEDGER_RENDERED", staged)
        .env("CFGLEDGER_OUT", out)
        .env_remove("CFGLEDGER_TOKEN")
        .env_remove(cfgledger_client::cache::KEY_ENV)
        .spawn()
        .map_err(|e| format!("cannot run the {what} command: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("the {what} command failed ({status})")),
            Ok(None) if Instant::now() >= deadline => {
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ =
                        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
                let _ = child.wait();
                return Err(format!("the {what} command did not finish within {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for the {what} command: {e}")),
        }
    }
}

/// Writes the snapshot to the file if its values differ from what the file holds: stage, check, replace,
/// reload. `Ok(false)` when nothing needed writing.
fn apply(opts: &RenderOptions, snap: &Snapshot) -> Result<bool, String> {
    let header = vec![format!(
        "{} settings rendered by cfgledger agent from {} at seq {} (head {})",
        snap.namespace, opts.follow.server, snap.seq, snap.head_hash
    )];
    let named: Vec<(&str, &serde_json::Value)> = snap.values.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let text = format_text(opts.format, &header, &named).map_err(|e| e.to_string())?;
    if let Ok(existing) = std::fs::read_to_string(&opts.out) {
        if body(&existing) == body(&text) {
            return Ok(false);
        }
    }
    let staged = cfgledger_client::files::stage(&opts.out, text.as_bytes())
        .map_err(|e| format!("cannot stage {}: {e}", opts.out.display()))?;
    if let Some(check) = &opts.check_cmd {
        // Dropping `staged` removes it: the old file stays as it was.
        run_command("check", check, staged.path(), &opts.out, opts.command_timeout)
            .map_err(|e| format!("{e}; {} was left as it was", opts.out.display()))?;
    }
    // The directory is not synced: after a crash of the machine the agent renders the file again at start.
    staged.replace().map_err(|e| format!("cannot replace {}: {e}", opts.out.display()))?;
    if let Some(reload) = &opts.reload_cmd {
        run_command("reload", reload, &opts.out, &opts.out, opts.command_timeout)?;
    }
    Ok(true)
}

pub fn run(opts: RenderOptions) -> Result<(), Error> {
    let client = if opts.once { Client::load(opts.follow.clone()) } else { Client::start(opts.follow.clone()) }
        .map_err(super::start_error)?;
    super::announce(&client, &format!("rendering {}", opts.out.display()));
    let state = Arc::new(Mutex::new(FileState { written: None, error: None }));
    let attempt = |snap: Arc<Snapshot>| -> Result<(), String> {
        let result = apply(&opts, &snap);
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        match &result {
            Ok(wrote) => {
                if *wrote {
                    tracing::info!(seq = snap.seq, file = %opts.out.display(), "rendered");
                }
                st.written = Some(snap);
                st.error = None;
            }
            Err(e) => {
                // `--once` reports it as its error; a follower says it here and goes on.
                if !opts.once {
                    eprintln!("cfgledger agent: seq {} not applied: {e}", snap.seq);
                }
                st.error = Some(e.clone());
            }
        }
        result.map(|_| ())
    };
    if opts.once {
        return attempt(client.snapshot()).map_err(|e| Error::Coded {
            code: crate::error::ErrorCode::InvalidValue,
            message: e,
            details: serde_json::Value::Null,
        });
    }
    {
        let state = state.clone();
        client.set_report_hook(move |r| {
            let st = state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(err) = &st.error {
                r.error = Some(err.clone());
            }
            // The file holds what was last written; a newer snapshot that failed its check is not applied, and
            // before a first write the agent has applied nothing (seq 0).
            if st.error.is_some() {
                match &st.written {
                    Some(w) => {
                        r.applied_seq = w.seq;
                        r.head_hash = w.head_hash.clone();
                    }
                    None => {
                        r.applied_seq = 0;
                        r.head_hash = "0".repeat(64);
                    }
                }
            }
        });
    }
    // `true` asks to stop (SIGTERM, SIGINT); `false` says the configuration changed.
    let (tx, rx) = mpsc::channel::<bool>();
    {
        let tx = tx.clone();
        client.on_change(move |_| {
            let _ = tx.send(false);
        });
    }
    let signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])
        .map_err(|e| Error::io("cannot install the signal handlers", e))?;
    let stop = signals.handle();
    std::thread::Builder::new()
        .name("cfgledger-signals".into())
        .spawn(move || {
            let mut signals = signals;
            if signals.forever().next().is_some() {
                let _ = tx.send(true);
            }
        })
        .map_err(|e| Error::io("cannot start the signal thread", e))?;
    let _ = attempt(client.snapshot());
    client.beat_now();
    // A failed check is tried again at the next change, not in a loop: the same values would fail the same way.
    while let Ok(false) = rx.recv() {
        let mut stopping = false;
        while let Ok(next) = rx.try_recv() {
            stopping |= next;
        }
        if stopping {
            break;
        }
        let _ = attempt(client.snapshot());
        client.beat_now();
    }
    stop.close();
    client.stop();
    Ok(())
}
