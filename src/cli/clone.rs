//! `cfgledger clone --from URL --to URL` (a replay clone, or `--mirror` for a verbatim copy of the log) and
//! `cfgledger log export` / `log import` (a JSON-lines backup and its restore). Long copies show a progress
//! bar with rate and ETA on a terminal (nothing when standard error is not one) and end with a summary:
//! events copied, seconds, events per second, head hash.

use super::{emit, Globals};
use crate::error::Error;
use crate::ledger::{Ledger, OpenOptions};
use crate::model::{ClonePlan, PlanStep};
use crate::store::{self, StoreUrl};
use crate::usecase::clone::{self, ReplayOptions};
use cfgledger_events::{Cause, Command, Head};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Args)]
pub struct CloneArgs {
    /// The store to clone (sqlite://PATH or postgres://...).
    #[arg(long)]
    from: String,
    /// The store to clone into (created when it does not exist).
    #[arg(long)]
    to: String,
    /// Clone the source as it was then: an RFC 3339 time, a duration before now (24h) or seq:N.
    #[arg(long, value_name = "POINT")]
    until: Option<String>,
    /// Copy the log verbatim (the target's head hash equals the source's): backups, moving between SQLite and
    /// PostgreSQL, read replicas. The target must be empty or an interrupted mirror of this source.
    #[arg(long)]
    mirror: bool,
    /// The environment variable holding the source's CFGLEDGER_AUTH_ENCRYPTION_SECRET, when it is not the target's
    /// (a SQLite source's key file beside it is used when there is one).
    #[arg(long, value_name = "VAR")]
    source_secret_env: Option<String>,
    /// Keys (or KIND/NAME) to leave out, comma-separated; a trailing * matches a prefix.
    #[arg(long, value_delimiter = ',')]
    exclude_keys: Vec<String>,
    /// A value for the target instead of the source's (environment-specific keys): KEY=VALUE, repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Print the plan: what the target would hold, conflicts first. Nothing is written.
    #[arg(long)]
    dry_run: bool,
    /// Apply only if the target's head is still this seq (the head a reviewed dry run printed).
    #[arg(long)]
    expected_head: Option<u64>,
    #[arg(long)]
    reason: Option<String>,
}

/// A progress bar on standard error when it is a terminal; hidden otherwise.
fn bar(what: &str, total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {human_pos}/{human_len} events, {per_sec}, ETA {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

fn summary(what: &str, copied: u64, already: u64, started: Instant, head: Head) -> String {
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { copied as f64 / secs } else { 0.0 };
    let resumed = if already > 0 { format!(" (the target already held {already})") } else { String::new() };
    format!("{what} {copied} events{resumed} in {secs:.2} s ({rate:.0} events/s); head {}:{}", head.seq, head.hash)
}

/// Opens a store that must exist (the source of a copy).
fn existing(url: &str) -> Result<std::sync::Arc<dyn store::EventStore>, Error> {
    let url = StoreUrl::parse(url)?;
    if let Some(path) = url.sqlite_path() {
        if !path.exists() {
            return Err(Error::input(format!("no store at {}", path.display())));
        }
    }
    Ok(store::open(&url)?)
}

/// The key file a SQLite store keeps its secret in, if the store is SQLite.
fn key_file(url: &str) -> Option<PathBuf> {
    let url = StoreUrl::parse(url).ok()?;
    let path = url.sqlite_path()?;
    let mut name = path.as_os_str().to_owned();
    name.push(".key");
    Some(PathBuf::from(name))
}

/// A point of the source's log as a seq.
fn source_point(source: &dyn store::EventStore, text: &str, now: cfgledger_events::Timestamp) -> Result<u64, Error> {
    let head = source.head()?.seq;
    if let Some(n) = text.trim().strip_prefix("seq:") {
        let seq: u64 = n.parse().map_err(|_| Error::input(format!("--until seq:N expects a number; got {text:?}")))?;
        if seq == 0 || seq > head {
            return Err(Error::input(format!(
                "--until seq:{seq} is not in the source's log, which holds seqs 1 to {head}"
            )));
        }
        return Ok(seq);
    }
    let time = crate::ledger::history::parse_time(text, now)?;
    source.seq_at(time)?.ok_or_else(|| Error::input(format!("--until {text} is before the source existed")))
}

/// The file a SQLite URL names, with its directory resolved, to tell two spellings of one store apart.
fn canonical_sqlite(url: &str) -> Option<PathBuf> {
    let url = StoreUrl::parse(url).ok()?;
    let path = url.sqlite_path()?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Some(std::fs::canonicalize(dir).ok()?.join(path.file_name()?))
}

pub fn run(g: &Globals, args: CloneArgs) -> Result<(), Error> {
    let same_file = canonical_sqlite(&args.from).is_some_and(|a| canonical_sqlite(&args.to).is_some_and(|b| a == b));
    if args.from.trim() == args.to.trim() || same_file {
        return Err(Error::input("--from and --to name the same store"));
    }
    let source = existing(&args.from)?;
    let clock = crate::clock::SystemClock;
    let now = crate::clock::Clock::now(&clock);
    let until = args.until.as_deref().map(|t| source_point(source.as_ref(), t, now)).transpose()?;
    if args.mirror {
        if !args.overrides.is_empty() || !args.exclude_keys.is_empty() || args.source_secret_env.is_some() {
            return Err(Error::input(
                "--mirror copies the log verbatim: --set, --exclude-keys and --source-secret-env apply to a replay clone",
            ));
        }
        return mirror(&args, source.as_ref(), until);
    }
    let overrides = args
        .overrides
        .iter()
        .map(|o| {
            o.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| Error::input(format!("--set expects KEY=VALUE; got {o:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let source_secret = match &args.source_secret_env {
        Some(var) => Some(zeroize::Zeroizing::new(
            std::env::var(var)
                .map_err(|_| Error::input(format!("--source-secret-env {var}: the variable is not set")))?,
        )),
        None => key_file(&args.from)
            .filter(|p| p.exists())
            .map(|p| std::fs::read_to_string(&p).map(|t| zeroize::Zeroizing::new(t.trim().to_string())))
            .transpose()
            .map_err(|e| Error::Secret(format!("cannot read the source's key file: {e}")))?,
    };
    let opts = ReplayOptions {
        until,
        exclude: args.exclude_keys.clone(),
        overrides,
        source_secret,
        expected_head: args.expected_head,
    };
    let started = Instant::now();
    // A target that does not exist yet is planned in memory first (as the new store would start), so that
    // a dry run or a refusal leaves nothing behind.
    let absent = StoreUrl::parse(&args.to)?.sqlite_path().is_some_and(|p| !p.exists());
    if absent {
        let preview = open_target(g, "memory:")?;
        let (_, plan, _) = clone::replay_plan(source.as_ref(), &preview, &opts)?;
        if args.dry_run {
            print_plan(&plan)?;
            return emit(format!("dry run into a new store at {}: nothing written", args.to.trim()));
        }
    }
    let target = open_target(g, &args.to)?;
    let (req, plan, provenance) = clone::replay_plan(source.as_ref(), &target, &opts)?;
    print_plan(&plan)?;
    if args.dry_run {
        return emit(format!("dry run at the target's head {}: nothing applied", plan.plan.head));
    }
    let mut ctx = g.context("clone", args.reason.clone());
    ctx.cause = Cause::Clone {
        source_store_id: provenance.store_id.clone(),
        source_seq: provenance.seq,
        source_head_hash: provenance.head_hash.to_hex(),
        via: "clone".into(),
    };
    let outcome = target.execute(Command::Rollback(req), ctx)?;
    match (outcome.batch_id, outcome.seqs) {
        (Some(batch), Some((first, last))) => emit(format!(
            "{}; batch {batch}",
            summary("replayed into", last - first + 1, 0, started, outcome.head).replacen(
                "replayed into",
                &format!("cloned seq {} of {} as", provenance.seq, provenance.store_id),
                1
            )
        )),
        _ => {
            emit(format!("nothing to change: the target already holds the source's state as of seq {}", provenance.seq))
        }
    }
}

/// The target of a replay clone, opened (and created and seeded from `.env` on first use) as any command
/// opens a store.
fn open_target(g: &Globals, url: &str) -> Result<Ledger, Error> {
    let catalog = crate::catalog_file::load(&g.catalog)?;
    let mut opts = OpenOptions::new(StoreUrl::parse(url)?, catalog);
    opts.env_file = g.env_file.clone();
    opts.process_env = std::env::vars().collect();
    let (ledger, report) = Ledger::open(opts)?;
    if let Some(path) = &report.key_file_created {
        eprintln!("created encryption key file {} (mode 0600); back it up with the database", path.display());
    }
    Ok(ledger)
}

/// The plan of a replay clone: conflicts (what the target holds with another value) first.
fn print_plan(plan: &ClonePlan) -> Result<(), Error> {
    let (first, rest): (Vec<&PlanStep>, Vec<&PlanStep>) =
        plan.plan.steps.iter().partition(|s| plan.conflicts.contains(&s.subject));
    if !first.is_empty() {
        emit(format!("conflicts: the target holds {} of these with another value", first.len()))?;
    }
    for step in first.into_iter().chain(rest) {
        emit(super::history::plan_step_line(step))?;
    }
    let c = &plan.plan.counts;
    emit(format!(
        "plan from {} seq {}: {} set, {} create, {} update, {} locked (left alone), {} invalid; {} conflict(s)",
        plan.source.store_id.as_deref().unwrap_or("-"),
        plan.source.seq,
        c.set,
        c.create,
        c.update,
        c.locked,
        c.invalid,
        plan.conflicts.len()
    ))
}

fn mirror(args: &CloneArgs, source: &dyn store::EventStore, until: Option<u64>) -> Result<(), Error> {
    let target_url = StoreUrl::parse(&args.to)?;
    if args.dry_run && target_url.sqlite_path().is_some_and(|p| !p.exists()) {
        let total = until.unwrap_or(source.head()?.seq);
        return emit(format!(
            "dry run: would copy {total} events from {} into a new store at {}",
            source.describe(),
            args.to.trim()
        ));
    }
    let started = Instant::now();
    if let (Some(from), Some(to), None) = (StoreUrl::parse(&args.from)?.sqlite_path(), target_url.sqlite_path(), until)
    {
        if !to.exists() {
            return mirror_by_pages(from, to, started);
        }
    }
    let target = store::open(&target_url)?;
    let total = until.unwrap_or(source.head()?.seq).saturating_sub(target.head()?.seq);
    let progress = bar("mirroring", total);
    if args.dry_run {
        progress.finish_and_clear();
        return emit(format!(
            "dry run: would copy {total} events from {} to {} (the target holds {})",
            source.describe(),
            target.describe(),
            target.head()?.seq
        ));
    }
    let report = clone::mirror(source, target.as_ref(), until, &mut |done, _| progress.set_position(done))?;
    progress.finish_and_clear();
    // A mirror shares the source's encryption key: a SQLite source's key file goes beside a SQLite target.
    if let (Some(from), Some(to)) = (key_file(&args.from), key_file(&args.to)) {
        if from.exists() && !to.exists() {
            copy_key_file(&from, &to)?;
            eprintln!("copied the source's key file to {} (mode 0600)", to.display());
        }
    } else if key_file(&args.to).is_none() {
        eprintln!(
            "the target opens with the source's CFGLEDGER_AUTH_ENCRYPTION_SECRET (a mirror keeps the source's key); set it where the target is used"
        );
    }
    emit(summary("mirrored", report.copied, report.already, started, report.head))
}

/// A mirror of a whole SQLite store into a new file (`clone::mirror_file`), then its key file beside it.
fn mirror_by_pages(from: &Path, to: &Path, started: Instant) -> Result<(), Error> {
    let head = clone::mirror_file(from, to)?;
    let (from_key, to_key) = (wal_of(from, ".key"), wal_of(to, ".key"));
    if from_key.exists() && !to_key.exists() {
        copy_key_file(&from_key, &to_key)?;
        eprintln!("copied the source's key file to {} (mode 0600)", to_key.display());
    }
    emit(summary("mirrored", head.seq, 0, started, head))
}

/// `path` with `suffix` appended to its file name (`-wal`, `.key`).
fn wal_of(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn copy_key_file(from: &Path, to: &Path) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let secret = zeroize::Zeroizing::new(
        std::fs::read(from).map_err(|e| Error::Secret(format!("cannot read {}: {e}", from.display())))?,
    );
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| Error::Secret(format!("cannot create {}: {e}", to.display())))?;
    f.write_all(&secret).map_err(|e| Error::Secret(format!("cannot write {}: {e}", to.display())))
}

#[derive(Debug, Args)]
pub struct LogExportArgs {
    /// Only the log up to this point: an RFC 3339 time, a duration before now (24h) or seq:N.
    #[arg(long, value_name = "POINT")]
    until: Option<String>,
    /// The file to write (`-` for standard output).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct LogImportArgs {
    /// A file written by `log export` (`-` for standard input).
    file: PathBuf,
}

pub fn log_export(g: &Globals, args: LogExportArgs) -> Result<(), Error> {
    let source = super::open_existing(g)?;
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let until = args.until.as_deref().map(|t| source_point(source.as_ref(), t, now)).transpose()?;
    let started = Instant::now();
    let total = until.unwrap_or(source.head()?.seq);
    let to_stdout = args.out.as_os_str() == "-";
    let progress = bar("exporting", total);
    let head = if to_stdout {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        clone::export_jsonl(source.as_ref(), until, &mut out, &mut |done, _| progress.set_position(done))?
    } else {
        // Written beside the target and renamed into place, so that a failed export leaves no partial file.
        let partial = args.out.with_extension("partial");
        let file = std::fs::File::create(&partial)
            .map_err(|e| Error::io(format!("cannot create {}", partial.display()), e))?;
        let mut out = std::io::BufWriter::new(file);
        let head = clone::export_jsonl(source.as_ref(), until, &mut out, &mut |done, _| progress.set_position(done));
        drop(out);
        match head {
            Ok(head) => {
                std::fs::rename(&partial, &args.out)
                    .map_err(|e| Error::io(format!("cannot write {}", args.out.display()), e))?;
                head
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        }
    };
    progress.finish_and_clear();
    let line = summary("exported", head.seq, 0, started, head);
    if to_stdout {
        eprintln!("{line}");
        Ok(())
    } else {
        emit(line)
    }
}

pub fn log_import(g: &Globals, args: LogImportArgs) -> Result<(), Error> {
    let started = Instant::now();
    let backup = if args.file.as_os_str() == "-" {
        clone::read_jsonl(&mut std::io::stdin().lock())?
    } else {
        let file = std::fs::File::open(&args.file)
            .map_err(|e| Error::input_from(format!("cannot read {}", args.file.display()), e))?;
        clone::read_jsonl(&mut std::io::BufReader::new(file))?
    };
    if backup.records.is_empty() {
        return Err(Error::input(format!("{} holds no events", args.file.display())));
    }
    let target = store::open(&g.db)?;
    let progress = bar("importing", backup.records.len() as u64);
    let report = clone::restore(target.as_ref(), &backup, &mut |done, _| progress.set_position(done))?;
    progress.finish_and_clear();
    if let Some(path) = g.db.sqlite_path() {
        let mut key = path.as_os_str().to_owned();
        key.push(".key");
        if !Path::new(&key).exists() {
            eprintln!(
                "the restored store opens with the exported store's CFGLEDGER_AUTH_ENCRYPTION_SECRET, or its key file copied to {}",
                Path::new(&key).display()
            );
        }
    }
    emit(summary("imported", report.copied, report.already, started, report.head))
}
