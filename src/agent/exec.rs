//! `cfgledger agent exec -- CMD ARGS...`: runs CMD with the namespace's settings as its environment (the
//! render's values, as environment text), passes its output and exit code through, forwards signals to its
//! process group, and follows the store: a change of a restart-required key restarts it gracefully (the
//! stop signal, then a kill after the grace period, after a random splay so that a fleet does not restart
//! at once); a change of a hot key restarts it, signals it, or leaves it, as `--on-change` says. The server
//! being down never stops the child: the follower goes stale, retries and catches up.

use crate::error::Error;
use cfgledger_client::wire::ChildReport;
use cfgledger_client::{Change, Client, Snapshot};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::str::FromStr;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// What a change of a hot key does to the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChange {
    /// Restart it, as for a restart-required key (an application that caches its settings).
    Restart,
    /// Send it this signal (an application that reloads on, say, SIGHUP).
    Signal(Signal),
    /// Leave it: it reads hot keys itself.
    Ignore,
}

impl FromStr for OnChange {
    type Err = Error;

    fn from_str(s: &str) -> Result<OnChange, Error> {
        match s {
            "restart" => Ok(OnChange::Restart),
            "none" => Ok(OnChange::Ignore),
            other => match other.strip_prefix("signal:") {
                Some(name) => parse_signal(name).map(OnChange::Signal),
                None => Err(Error::input(format!(
                    "--on-change expects restart, signal:NAME (signal:HUP) or none; got {other:?}"
                ))),
            },
        }
    }
}

/// A signal by name, with or without `SIG` (`HUP`, `SIGTERM`).
pub fn parse_signal(name: &str) -> Result<Signal, Error> {
    let full = if name.starts_with("SIG") { name.to_string() } else { format!("SIG{name}") };
    Signal::from_str(&full.to_ascii_uppercase()).map_err(|_| Error::input(format!("unknown signal {name:?}")))
}

#[derive(Debug)]
pub struct ExecOptions {
    pub follow: cfgledger_client::Options,
    pub command: Vec<String>,
    /// Render, run, and do not follow.
    pub once: bool,
    pub on_change: OnChange,
    /// A restart waits a random time up to this first.
    pub splay: Duration,
    /// The signal that asks the child to stop before a restart.
    pub kill_signal: Signal,
    /// How long the child has to stop before it is killed.
    pub kill_timeout: Duration,
    /// Give the child only the rendered settings, not the agent's own environment.
    pub pristine: bool,
    /// A child restarted for a change that exits with an error within this time is started again with the
    /// configuration it ran with before (zero: never).
    pub rollback_window: Duration,
}

enum Msg {
    Signal(i32),
    Exited(u32, std::io::Result<ExitStatus>),
    Changed(Box<Change>),
}

/// What heartbeats say about the child.
struct ChildState {
    report: ChildReport,
    /// The configuration the child runs with.
    config: Arc<Snapshot>,
    /// A change it has not been given yet (a restart is pending, or `--on-change none`).
    behind: bool,
    /// Why it runs an older configuration than the newest (a configuration it could not start with).
    error: Option<String>,
}

/// A restart for a change, remembered until the new child has lived through the rollback window.
struct Trial {
    started: Instant,
    /// The configuration the child ran with before, which it returns to if the new one makes it fail.
    previous: Arc<Snapshot>,
}

/// The child's exit code as a shell reports it: its code, or 128 + the signal that ended it.
fn exit_code(status: &ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c & 0xff).unwrap_or(1),
        (None, Some(s)) => u8::try_from(128 + (s & 0x7f)).unwrap_or(255),
        (None, None) => 1,
    }
}

fn describe(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "unknown".to_string(),
    }
}

/// The variables an agent never hands its child: its own credentials.
const WITHHELD: &[&str] = &["CFGLEDGER_TOKEN", cfgledger_client::cache::KEY_ENV];

/// Starts the child in its own process group, with a thread that reports its exit.
fn spawn(opts: &ExecOptions, config: &Snapshot, tx: &mpsc::Sender<Msg>) -> Result<u32, Error> {
    let mut cmd = Command::new(&opts.command[0]);
    cmd.args(&opts.command[1..]).process_group(0);
    if opts.pristine {
        cmd.env_clear();
    }
    for name in WITHHELD {
        cmd.env_remove(name);
    }
    if let cfgledger_client::TokenSource::Env(name) = &opts.follow.token {
        cmd.env_remove(name);
    }
    cmd.envs(config.env());
    let mut child = cmd.spawn().map_err(|e| {
        eprintln!("cfgledger agent: cannot start {}: {e}", opts.command[0]);
        Error::ChildExit(if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 })
    })?;
    let pid = child.id();
    let tx = tx.clone();
    let (handoff, taken) = mpsc::channel::<Child>();
    let waiter = std::thread::Builder::new().name("cfgledger-child".into()).spawn(move || {
        if let Ok(mut child) = taken.recv() {
            let status = child.wait();
            let _ = tx.send(Msg::Exited(pid, status));
        }
    });
    match waiter {
        Ok(_) => {
            let _ = handoff.send(child);
            Ok(pid)
        }
        Err(e) => {
            // Nobody would wait for it: it must not run on unsupervised.
            signal_group(pid, Signal::SIGKILL);
            let _ = child.wait();
            Err(Error::io("cannot start the child's waiter thread", e))
        }
    }
}

fn signal_group(pid: u32, signal: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        if let Err(e) = killpg(Pid::from_raw(raw), signal) {
            if e != nix::errno::Errno::ESRCH {
                tracing::warn!(error = %e, signal = %signal, "cannot signal the child's process group");
            }
        }
    }
}

fn signal_child(pid: u32, signal: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        if let Err(e) = nix::sys::signal::kill(Pid::from_raw(raw), signal) {
            if e != nix::errno::Errno::ESRCH {
                tracing::warn!(error = %e, signal = %signal, "cannot signal the child");
            }
        }
    }
}

fn random_splay(max: Duration) -> Duration {
    use rand::Rng;
    if max.is_zero() {
        return Duration::ZERO;
    }
    max.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
}

/// Runs the child until it exits on its own or the agent is told to stop; returns with the child's code.
pub fn run(opts: ExecOptions) -> Result<(), Error> {
    let client = if opts.once { Client::load(opts.follow.clone()) } else { Client::start(opts.follow.clone()) }
        .map_err(super::start_error)?;
    super::announce(&client, &format!("starting {}", opts.command[0]));
    let (tx, rx) = mpsc::channel();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGQUIT,
        signal_hook::consts::SIGUSR1,
        signal_hook::consts::SIGUSR2,
    ])
    .map_err(|e| Error::io("cannot install the signal handlers", e))?;
    {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("cfgledger-signals".into())
            .spawn(move || {
                for s in signals.forever() {
                    if tx.send(Msg::Signal(s)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| Error::io("cannot start the signal thread", e))?;
    }
    if !opts.once {
        let tx = tx.clone();
        client.on_change(move |c| {
            let _ = tx.send(Msg::Changed(Box::new(c.clone())));
        });
    }
    let first = client.snapshot();
    let mut pid = spawn(&opts, &first, &tx)?;
    let state = Arc::new(Mutex::new(ChildState {
        report: ChildReport {
            state: "running".into(),
            pid: Some(pid),
            restarts: 0,
            config_seq: Some(first.seq),
            last_exit: None,
        },
        config: first,
        behind: false,
        error: None,
    }));
    {
        let state = state.clone();
        client.set_report_hook(move |r| {
            let st = state.lock().unwrap_or_else(|e| e.into_inner());
            r.child = Some(st.report.clone());
            // Until the child runs with the newest configuration, the agent has applied the one it runs with.
            if st.behind {
                r.applied_seq = st.config.seq;
                r.head_hash = st.config.head_hash.clone();
            }
            if st.error.is_some() {
                r.error = st.error.clone();
            }
        });
    }
    client.beat_now();
    let update = |f: &mut dyn FnMut(&mut ChildState)| {
        f(&mut state.lock().unwrap_or_else(|e| e.into_inner()));
        client.beat_now();
    };
    let mut restart_at: Option<Instant> = None;
    let mut kill_at: Option<Instant> = None;
    let mut restarting = false;
    let mut stopping = false;
    let mut trial: Option<Trial> = None;
    loop {
        let wake = [restart_at, kill_at].into_iter().flatten().min();
        let wait = wake.map(|t| t.saturating_duration_since(Instant::now())).unwrap_or(Duration::from_secs(1));
        match rx.recv_timeout(wait) {
            Ok(Msg::Signal(raw)) => {
                let Ok(signal) = Signal::try_from(raw) else { continue };
                signal_group(pid, signal);
                if matches!(signal, Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT) && !stopping {
                    tracing::info!(signal = %signal, "stopping: the signal was passed to the child");
                    stopping = true;
                    restart_at = None;
                    kill_at = Some(Instant::now() + opts.kill_timeout);
                    update(&mut |s| s.report.state = "stopping".into());
                }
            }
            Ok(Msg::Changed(change)) => {
                if stopping {
                    continue;
                }
                let restart = change.restart_required || opts.on_change == OnChange::Restart;
                if restart {
                    if restart_at.is_none() && !restarting {
                        let delay = random_splay(opts.splay);
                        tracing::info!(
                            seq = change.current.seq,
                            keys = %change.keys.join(","),
                            restart_required = change.restart_required,
                            splay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                            "configuration changed: restarting the child"
                        );
                        restart_at = Some(Instant::now() + delay);
                    }
                    update(&mut |s| s.behind = true);
                } else if let OnChange::Signal(signal) = opts.on_change {
                    tracing::info!(seq = change.current.seq, keys = %change.keys.join(","), signal = %signal, "configuration changed: signalling the child");
                    // The child alone, not its group: a helper it started would die of a signal it does not
                    // handle. Its environment cannot change: it re-reads the store (the client crate) or a
                    // file `agent render` keeps.
                    signal_child(pid, signal);
                    let current = change.current.clone();
                    update(&mut |s| {
                        s.config = current.clone();
                        s.report.config_seq = Some(current.seq);
                        s.behind = false;
                    });
                } else {
                    tracing::info!(seq = change.current.seq, keys = %change.keys.join(","), "configuration changed: hot keys, the child is left as it is (--on-change none)");
                    update(&mut |s| s.behind = true);
                }
            }
            Ok(Msg::Exited(exited, status)) if exited == pid => {
                // Whatever the child left in its group goes with it. The group's id stays reserved while any
                // member lives, so this reaches those members, or no one.
                signal_group(pid, Signal::SIGKILL);
                let status = status.map_err(|e| Error::io("cannot wait for the child", e))?;
                let how = describe(&status);
                update(&mut |s| {
                    s.report.last_exit = Some(how.clone());
                    s.report.pid = None;
                    s.report.state = "exited".into();
                });
                if restarting && !stopping {
                    let config = client.snapshot();
                    let previous = state.lock().unwrap_or_else(|e| e.into_inner()).config.clone();
                    pid = spawn(&opts, &config, &tx)?;
                    restarting = false;
                    kill_at = None;
                    trial = (!opts.rollback_window.is_zero()).then(|| Trial { started: Instant::now(), previous });
                    tracing::info!(pid, seq = config.seq, previous = %how, "child restarted with the new configuration");
                    update(&mut |s| {
                        s.report.state = "running".into();
                        s.report.pid = Some(pid);
                        s.report.restarts += 1;
                        s.report.config_seq = Some(config.seq);
                        s.config = config.clone();
                        s.behind = false;
                        s.error = None;
                    });
                    continue;
                }
                // A child that fails soon after a restart for a change failed because of the change: it runs
                // again with the configuration it ran with before, and waits for the next change. A failed
                // update never takes the service down.
                if let Some(t) = trial.take().filter(|t| t.started.elapsed() < opts.rollback_window) {
                    if !stopping && !status.success() {
                        let failed = state.lock().unwrap_or_else(|e| e.into_inner()).config.seq;
                        let why = format!(
                            "the configuration of seq {failed} made the child fail ({how}) within {} s; it runs the configuration of seq {} again until the next change",
                            opts.rollback_window.as_secs_f64(),
                            t.previous.seq
                        );
                        eprintln!("cfgledger agent: {why}");
                        tracing::error!(failed_seq = failed, kept_seq = t.previous.seq, status = %how, "rolled the child back to its last good configuration");
                        pid = spawn(&opts, &t.previous, &tx)?;
                        // The last-known-good cache is what the child runs: an agent started during an
                        // outage must not start it with what just failed.
                        client.remember(&t.previous);
                        let previous = t.previous.clone();
                        update(&mut |s| {
                            s.report.state = "running".into();
                            s.report.pid = Some(pid);
                            s.report.config_seq = Some(previous.seq);
                            s.config = previous.clone();
                            s.behind = true;
                            s.error = Some(why.clone());
                        });
                        continue;
                    }
                }
                if !stopping && !status.success() {
                    tracing::warn!(status = %how, "the child failed on its own; the agent exits with its code");
                } else if !stopping {
                    tracing::info!(status = %how, "the child exited on its own; the agent exits with its code");
                }
                client.stop();
                return match exit_code(&status) {
                    0 => Ok(()),
                    code => Err(Error::ChildExit(code)),
                };
            }
            Ok(Msg::Exited(..)) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                if restart_at.is_some_and(|t| t <= now) {
                    restart_at = None;
                    restarting = true;
                    kill_at = Some(now + opts.kill_timeout);
                    signal_group(pid, opts.kill_signal);
                    update(&mut |s| s.report.state = "restarting".into());
                }
                if kill_at.is_some_and(|t| t <= now) {
                    tracing::warn!(
                        grace_ms = u64::try_from(opts.kill_timeout.as_millis()).unwrap_or(u64::MAX),
                        "the child did not stop within its grace period: killing it"
                    );
                    signal_group(pid, Signal::SIGKILL);
                    kill_at = None;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::internal("the agent lost its own channel", std::io::Error::other("disconnected")))
            }
        }
    }
}
