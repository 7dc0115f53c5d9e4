//! Where the machine's CPU went over a timed window, from Linux's `/proc`: the whole machine, this process,
//! and the local PostgreSQL server's processes, for the benches that load a database on the same cores.
//!
//! PostgreSQL's share counts every process named `postgres`: its CPU time since the first reading, or all of
//! it for a process that started during the window (a mirror's own connection, a parallel worker of an index
//! build), plus what the postmaster collected from children that exited during the window (`cutime` and
//! `cstime`: a parallel worker lives only as long as its build), less what a process that exited during the
//! window had used before it. Counting only the processes alive at both readings missed all of those, and put
//! an index build's workers under "everything else".

use std::collections::HashMap;
use std::time::Instant;

/// Clock ticks per second of `/proc/PID/stat`'s CPU times (`CLK_TCK`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// One reading.
pub struct Cpu {
    at: Instant,
    busy: u64,
    total: u64,
    own: u64,
    /// Each `postgres` process's own CPU time, and the time of its children that it waited for.
    postgres: HashMap<u32, Ticks>,
}

#[derive(Clone, Copy, Default)]
struct Ticks {
    own: u64,
    children: u64,
}

/// The command name of one `/proc/PID/stat` text, with its CPU time and its waited-for children's.
fn proc_ticks(stat: &str) -> Option<(&str, Ticks)> {
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let (head, after) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let at = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    // utime, stime, cutime and cstime: fields 14 to 17 of the whole line, the 12th to 15th after the name.
    Some((comm, Ticks { own: at(11)? + at(12)?, children: at(13)? + at(14)? }))
}

impl Cpu {
    /// A reading now; `None` without `/proc`.
    pub fn now() -> Option<Cpu> {
        let at = Instant::now();
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> =
            stat.lines().next()?.split_whitespace().skip(1).take(8).map(|f| f.parse().unwrap_or(0)).collect();
        let total: u64 = fields.iter().sum();
        // idle and iowait are not busy.
        let busy = total - fields.get(3).copied().unwrap_or(0) - fields.get(4).copied().unwrap_or(0);
        let own = proc_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?.1.own;
        let mut postgres = HashMap::new();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            if let Some(("postgres", ticks)) = proc_ticks(&text) {
                postgres.insert(pid, ticks);
            }
        }
        Some(Cpu { at, busy, total, own, postgres })
    }

    /// PostgreSQL's CPU time between two readings, in clock ticks.
    fn postgres_ticks(&self, to: &Cpu) -> u64 {
        let grown: u64 = to
            .postgres
            .iter()
            .map(|(pid, t)| {
                let t0 = self.postgres.get(pid).copied().unwrap_or_default();
                t.own.saturating_sub(t0.own) + t.children.saturating_sub(t0.children)
            })
            .sum();
        // A process that lived at the first reading and exited since is in its parent's children's time
        // whole: what it had used before the window is not the window's.
        let before: u64 =
            self.postgres.iter().filter(|(pid, _)| !to.postgres.contains_key(pid)).map(|(_, t)| t.own).sum();
        grown.saturating_sub(before)
    }
}

/// The CPU-seconds PostgreSQL's processes spent between two readings.
pub fn postgres_secs(from: &Option<Cpu>, to: &Option<Cpu>) -> f64 {
    match (from, to) {
        (Some(a), Some(b)) => a.postgres_ticks(b) as f64 / TICKS_PER_SEC,
        _ => 0.0,
    }
}

/// Where the CPU went between two readings: the machine's busy CPUs, this process's and PostgreSQL's, each in
/// CPUs (1.00 = one CPU busy the whole time) and in CPU-seconds, and everything else.
pub fn describe(from: &Option<Cpu>, to: &Option<Cpu>, this_process: &str) -> String {
    let (Some(a), Some(b)) = (from, to) else { return "CPU use unknown (no /proc)".into() };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let secs = (b.at - a.at).as_secs_f64().max(1e-9);
    let busy = (b.busy - a.busy) as f64 / (b.total - a.total).max(1) as f64 * cpus as f64;
    let own_secs = (b.own - a.own) as f64 / TICKS_PER_SEC;
    let pg_secs = a.postgres_ticks(b) as f64 / TICKS_PER_SEC;
    let (own, pg) = (own_secs / secs, pg_secs / secs);
    format!(
        "CPU: {busy:.2} of {cpus} busy: {this_process} {own:.2} ({own_secs:.1} CPU-s), PostgreSQL {pg:.2} \
         ({pg_secs:.1} CPU-s), everything else {:.2}",
        (busy - own - pg).max(0.0)
    )
}
