//! The follower's bookkeeping against a scripted server (a plain TCP listener speaking just enough
//! HTTP/1.1): what it owes survives a failed render, and a render older than a change it heard of is not
//! applied. The real server is in the workspace's `tests/client.rs`; this one fails on purpose.

use cfgledger_client::{Client, Origin};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const HASH: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// A render answer: the seq it answers for and its values, or a failure.
enum Render {
    Ok(u64, &'static str),
    Fail,
}

/// What one watch connection sends before it closes (`close`) or stays open.
struct Stream {
    events: Vec<String>,
    close: bool,
}

#[derive(Default)]
struct Script {
    renders: VecDeque<Render>,
    streams: VecDeque<Stream>,
    /// The `Last-Event-ID` of each watch request.
    resumed_after: Vec<Option<String>>,
    renders_served: usize,
}

fn change(seq: u64, restart: bool) -> String {
    format!("id: {seq}\ndata: {{\"seq\":{seq},\"kind\":\"SettingChanged\",\"restart_required\":{restart}}}\n\n")
}

fn progress(seq: u64) -> String {
    format!("event: progress\nid: {seq}\ndata: {{\"seq\":{seq},\"hash\":\"{HASH}\"}}\n\n")
}

/// Serves the script on a free port until the test ends.
fn serve(script: Arc<Mutex<Script>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let script = script.clone();
            std::thread::spawn(move || answer(conn, &script));
        }
    });
    url
}

fn answer(conn: TcpStream, script: &Mutex<Script>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let mut last_event_id = None;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("last-event-id:") {
            last_event_id = Some(v.trim().to_string());
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    let _ = std::io::Read::read_exact(&mut reader, &mut body);
    let mut out = conn;
    let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
    if path.starts_with("/admin/config/render") {
        let next = {
            let mut s = script.lock().unwrap();
            s.renders_served += 1;
            s.renders.pop_front()
        };
        let reply = match next {
            Some(Render::Ok(seq, json)) => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Cfgledger-Seq: {seq}\r\nX-Cfgledger-Head-Hash: {HASH}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            ),
            Some(Render::Fail) | None => {
                let body = r#"{"error":{"code":"internal","message":"scripted failure","details":null}}"#;
                format!("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            }
        };
        let _ = out.write_all(reply.as_bytes());
    } else if path.starts_with("/admin/config/watch") {
        let stream = {
            let mut s = script.lock().unwrap();
            s.resumed_after.push(last_event_id);
            s.streams.pop_front()
        };
        let Some(stream) = stream else {
            let _ =
                out.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        };
        let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n");
        for e in &stream.events {
            let _ = out.write_all(e.as_bytes());
            let _ = out.flush();
        }
        if !stream.close {
            // Held open until the client goes away: its read returns when the follower closes the stream.
            let mut rest = Vec::new();
            let _ = std::io::Read::read_to_end(&mut reader, &mut rest);
        }
    } else {
        let _ = out.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    }
}

fn client(url: &str) -> Client {
    Client::builder(url, "app")
        .heartbeat(None)
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .read_timeout(Duration::from_secs(5))
        .start()
        .expect("the client starts")
}

#[test]
fn a_restart_heard_of_survives_a_failed_render_and_a_reconnect() {
    let script = Arc::new(Mutex::new(Script::default()));
    {
        let mut s = script.lock().unwrap();
        s.renders.extend([Render::Ok(5, r#"{"A":"1"}"#), Render::Fail, Render::Ok(6, r#"{"A":"2"}"#)]);
        // The first stream says a restart-required change happened at 6, then breaks; the render after it
        // fails. The second stream has nothing new: the change is owed, and still needs a restart.
        s.streams.push_back(Stream { events: vec![progress(5), change(6, true), progress(6)], close: true });
        s.streams.push_back(Stream { events: vec![progress(6)], close: false });
    }
    let url = serve(script.clone());
    let c = client(&url);
    let (tx, rx) = mpsc::channel();
    c.on_change(move |ch| {
        let _ = tx.send((ch.keys.clone(), ch.restart_required, ch.current.seq));
    });
    let (keys, restart, seq) = rx.recv_timeout(Duration::from_secs(10)).expect("the change is applied");
    assert_eq!((keys, restart, seq), (vec!["A".to_string()], true, 6));
    let s = script.lock().unwrap();
    assert_eq!(s.resumed_after.get(1).cloned().flatten().as_deref(), Some("6"), "resumed after the last id");
    assert_eq!(s.renders_served, 3);
    assert_eq!(c.snapshot().origin, Origin::Server);
}

#[test]
fn a_render_older_than_the_change_heard_of_is_not_applied() {
    let script = Arc::new(Mutex::new(Script::default()));
    {
        let mut s = script.lock().unwrap();
        // A lagging server (behind a balancer) renders seq 6 after the stream said 7; the next render has 7.
        s.renders.extend([Render::Ok(5, r#"{"A":"1"}"#), Render::Ok(6, r#"{"A":"1"}"#), Render::Ok(7, r#"{"A":"3"}"#)]);
        s.streams.push_back(Stream { events: vec![progress(5), change(7, false), progress(7)], close: false });
    }
    let url = serve(script.clone());
    let c = client(&url);
    let (tx, rx) = mpsc::channel();
    c.on_change(move |ch| {
        let _ = tx.send((ch.current.seq, ch.current.str("A").map(str::to_string)));
    });
    let (seq, a) = rx.recv_timeout(Duration::from_secs(10)).expect("the change is applied");
    assert_eq!((seq, a.as_deref()), (7, Some("3")));
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "one change, not two");
    assert_eq!(script.lock().unwrap().renders_served, 3, "the older render was not taken, the next one was");
    assert_eq!(c.status().seq, 7);
}
