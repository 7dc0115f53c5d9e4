//! The side-by-side table: each metric for cfgledger and etcd, their ratio (cfgledger/etcd for throughput,
//! etcd/cfgledger for latency, so above 1 always means cfgledger is ahead), and the target for
//! cfgledger with whether this run met it. A phase with errors never counts as meeting its target.

use crate::measure::{Cpu, Delivery, Phase, DISTURBED};
use crate::Results;

#[derive(Clone, Copy)]
enum Kind {
    /// Per second, higher is better.
    Rate,
    /// Milliseconds, lower is better.
    Millis,
}

#[derive(Clone, Copy)]
enum Target {
    None,
    AtLeast(f64),
    Below(f64),
}

/// One figure of one system, and whether the phase it came from had failures.
#[derive(Clone, Copy)]
struct Figure {
    value: f64,
    clean: bool,
    disturbed: bool,
}

fn rate(phase: Option<&Phase>) -> Option<Figure> {
    phase.map(|p| Figure { value: p.rate(), clean: p.errors.count == 0, disturbed: Cpu::disturbed(p.cpu.as_ref()) })
}

fn p(phase: Option<&Phase>, q: f64) -> Option<Figure> {
    phase.map(|p| Figure {
        value: p.latency.ms(q),
        clean: p.errors.count == 0,
        disturbed: Cpu::disturbed(p.cpu.as_ref()),
    })
}

fn watch(d: Option<&Delivery>, from_send: bool, q: f64) -> Option<Figure> {
    d.filter(|d| d.from_send.len() > 0).map(|d| Figure {
        value: if from_send { d.from_send.ms(q) } else { d.from_ack.ms(q) },
        clean: d.errors.count == 0,
        disturbed: Cpu::disturbed(d.cpu.as_ref()),
    })
}

fn show(kind: Kind, f: Option<Figure>) -> String {
    match (kind, f) {
        (_, None) => "—".into(),
        (Kind::Rate, Some(f)) => format!("{}{}", thousands(f.value), marks(f)),
        (Kind::Millis, Some(f)) => format!("{:.3}{}", f.value, marks(f)),
    }
}

/// `*` for a phase with errors, `~` for one that other processes disturbed.
fn marks(f: Figure) -> &'static str {
    match (f.clean, f.disturbed) {
        (true, false) => "",
        (true, true) => "~",
        (false, false) => "*",
        (false, true) => "*~",
    }
}

/// `52,304`
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn row(metric: &str, kind: Kind, cfg: Option<Figure>, etcd: Option<Figure>, target: Target) {
    let ratio = match (cfg, etcd) {
        (Some(c), Some(e)) if c.value > 0.0 && e.value > 0.0 => match kind {
            Kind::Rate => format!("{:.2}x", c.value / e.value),
            Kind::Millis => format!("{:.2}x", e.value / c.value),
        },
        _ => "—".into(),
    };
    let (target_text, met) = match target {
        Target::None => (String::new(), String::new()),
        Target::AtLeast(t) => (format!("≥ {}", thousands(t)), verdict(cfg, |v| v >= t)),
        Target::Below(t) => (format!("< {t} ms"), verdict(cfg, |v| v < t)),
    };
    println!("{metric:<46} {:>12} {:>12} {ratio:>8}   {target_text:<10} {met}", show(kind, cfg), show(kind, etcd));
}

fn verdict(cfg: Option<Figure>, check: impl Fn(f64) -> bool) -> String {
    let Some(f) = cfg else { return "not measured".into() };
    let answer = match (f.clean, check(f.value)) {
        (false, _) => "NO (errors)",
        (true, true) => "yes",
        (true, false) => "NO",
    };
    if f.disturbed {
        format!("{answer}, disturbed")
    } else {
        answer.into()
    }
}

pub fn table(cfg: &Results, etcd: &Results, etcd_present: bool) {
    println!("\n== side by side ==");
    if !etcd_present {
        println!("(etcd was not found: its column is empty)");
    }
    println!("{:<46} {:>12} {:>12} {:>8}   {:<10} met (cfgledger)", "metric", "cfgledger", "etcd", "ratio", "target");
    let get = cfg.get.as_ref();
    row("get one key, 64 conns: req/s", Kind::Rate, rate(get), rate(etcd.get.as_ref()), Target::AtLeast(50_000.0));
    row("get one key, 64 conns: p50 ms", Kind::Millis, p(get, 0.5), p(etcd.get.as_ref(), 0.5), Target::None);
    row("get one key, 64 conns: p99 ms", Kind::Millis, p(get, 0.99), p(etcd.get.as_ref(), 0.99), Target::Below(5.0));
    if let (Some(c), Some(b)) = (rate(get), rate(cfg.get_bare.as_ref())) {
        let ratio = c.value / b.value;
        println!(
            "{:<46} {:>12} {:>12} {:>8}   {:<10} {}",
            "  vs the bare axum handler, same item: req/s",
            show(Kind::Rate, Some(c)),
            show(Kind::Rate, Some(b)),
            format!("{ratio:.2}x"),
            "≥ 0.70x",
            verdict(Some(Figure { value: ratio, ..c }), |v| v >= 0.7)
        );
    }
    if let (Some(c), Some(b)) = (rate(get), rate(cfg.get_bare_small.as_ref())) {
        println!(
            "{:<46} {:>12} {:>12} {:>8}",
            "  vs the bare handler, 56-byte summary: req/s",
            show(Kind::Rate, Some(c)),
            show(Kind::Rate, Some(b)),
            format!("{:.2}x", c.value / b.value)
        );
    }
    let serializable = etcd.get_serializable.as_ref();
    row("  vs etcd serializable range: req/s", Kind::Rate, rate(get), rate(serializable), Target::None);
    row("  vs etcd serializable range: p99 ms", Kind::Millis, p(get, 0.99), p(serializable, 0.99), Target::None);
    for clients in crate::PUT_CLIENTS {
        let (c, e) = (cfg.put(clients), etcd.put(clients));
        row(
            &format!("durable put, {clients} clients: changes/s"),
            Kind::Rate,
            rate(c),
            rate(e),
            Target::AtLeast(15_000.0),
        );
        row(&format!("durable put, {clients} clients: p50 ms"), Kind::Millis, p(c, 0.5), p(e, 0.5), Target::None);
        row(&format!("durable put, {clients} clients: p99 ms"), Kind::Millis, p(c, 0.99), p(e, 0.99), Target::None);
    }
    let (cw, ew) = (cfg.watch.as_ref(), etcd.watch.as_ref());
    row("watch delivery, send→event: p50 ms", Kind::Millis, watch(cw, true, 0.5), watch(ew, true, 0.5), Target::None);
    row(
        "watch delivery, send→event: p99 ms",
        Kind::Millis,
        watch(cw, true, 0.99),
        watch(ew, true, 0.99),
        Target::Below(5.0),
    );
    row("watch delivery, ack→event: p50 ms", Kind::Millis, watch(cw, false, 0.5), watch(ew, false, 0.5), Target::None);
    row(
        "watch delivery, ack→event: p99 ms",
        Kind::Millis,
        watch(cw, false, 0.99),
        watch(ew, false, 0.99),
        Target::None,
    );
    targets(cfg, etcd);
    println!("ratio: cfgledger/etcd for rates, etcd/cfgledger for latencies: above 1 means cfgledger is ahead.");
    println!(
        "get: cfgledger GET /admin/config/LOG_LEVEL vs etcd's default (linearizable) range, then its serializable one."
    );
    println!("watch: send→event times from just before the write is sent (it includes the durable commit) to the");
    println!("event's arrival at the watcher; the target is judged on it. ack→event starts at the write's");
    println!(
        "acknowledgement (events that beat the acknowledgement count as 0, shown as 0.001: the histogram's floor)."
    );
    println!("put: each cfgledger PUT is acknowledged after its group commit's fsync; etcd puts with its default");
    println!("durability (its WAL fsynced before the put is acknowledged). etcd is driven with etcd-client (gRPC).");
    println!("* the phase had errors: see its !!! lines.");
    println!("~ other processes used more than {DISTURBED} cores during the phase: the machine was not quiet.");
}

/// Issue 19's targets, each a ratio to a reference measured in this run.
fn targets(cfg: &Results, etcd: &Results) {
    println!("\n== issue 19: ratios to references measured in this run ==");
    let line = |what: &str, ratio: Option<f64>, target: f64| match ratio {
        Some(r) => {
            println!("{what:<62} {r:>7.2}x   target ≥ {target:.2}x   {}", if r >= target { "met" } else { "MISSED" })
        }
        None => println!("{what:<62} {:>7}    target ≥ {target:.2}x   not measured", "—"),
    };
    let rate_of = |p: Option<&Phase>| p.filter(|p| p.errors.count == 0).map(Phase::rate);
    let over = |a: Option<f64>, b: Option<f64>| a.zip(b).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b);
    let get = rate_of(cfg.get.as_ref());
    line("GET one key: cfgledger / bare axum handler (same item)", over(get, rate_of(cfg.get_bare.as_ref())), 0.7);
    line("GET one key: cfgledger / etcd (linearizable range)", over(get, rate_of(etcd.get.as_ref())), 8.0);
    for clients in crate::PUT_CLIENTS {
        let put = rate_of(cfg.put(clients));
        line(
            &format!("durable PUT, {clients} clients: cfgledger / etcd put"),
            over(put, rate_of(etcd.put(clients))),
            2.0,
        );
        let alone = cfg.store_only.iter().find(|(c, _, _)| *c == clients).map(|(_, r, _)| *r);
        line(&format!("durable PUT, {clients} clients: HTTP / the store alone"), over(put, alone), 0.5);
    }
    let (cw, ew) = (cfg.watch.as_ref(), etcd.watch.as_ref());
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        let c = watch(cw, true, q).filter(|f| f.clean).map(|f| f.value);
        let e = watch(ew, true, q).filter(|f| f.clean).map(|f| f.value);
        line(&format!("watch send→event {name}: etcd's time / cfgledger's"), over(e, c), 1.0);
    }
}
