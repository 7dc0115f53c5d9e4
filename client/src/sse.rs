//! A server-sent events reader (the WHATWG event-stream format): fields `event`, `data`, `id`, comments, and
//! a blank line that ends each event. Reads from any `BufRead`, so the follower's blocking HTTP body and the
//! tests' byte slices go through the same code.

use std::io::{BufRead, Read};

/// The longest line, and the most data one event may carry: a stream past them is broken (or hostile), and
/// reading on would grow memory without bound.
pub const MAX_LINE: usize = 1 << 20;
pub const MAX_EVENT: usize = 4 << 20;

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// `message` unless the event names another type.
    pub event: String,
    pub data: String,
    /// The event's own `id`, when it carries one.
    pub id: Option<String>,
}

/// Reads events one by one; `Ok(None)` at the end of the stream.
pub struct SseReader<R> {
    inner: R,
    line: String,
}

impl<R: BufRead> SseReader<R> {
    pub fn new(inner: R) -> Self {
        SseReader { inner, line: String::new() }
    }

    /// The next complete event. An event cut off by the end of the stream is dropped, as the format says.
    pub fn next_event(&mut self) -> std::io::Result<Option<SseEvent>> {
        let mut event = SseEvent::default();
        let mut has_data = false;
        let mut any_field = false;
        loop {
            self.line.clear();
            let n = (&mut self.inner).take(MAX_LINE as u64 + 1).read_line(&mut self.line)?;
            if n == 0 {
                return Ok(None);
            }
            if n > MAX_LINE {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("an event-stream line longer than {MAX_LINE} bytes"),
                ));
            }
            let line = self.line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if any_field {
                    if event.event.is_empty() {
                        event.event = "message".into();
                    }
                    if has_data || event.id.is_some() {
                        return Ok(Some(event));
                    }
                }
                event = SseEvent::default();
                has_data = false;
                any_field = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            any_field = true;
            match field {
                "event" => event.event = value.to_string(),
                "data" => {
                    if event.data.len() + value.len() > MAX_EVENT {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("an event carrying more than {MAX_EVENT} bytes of data"),
                        ));
                    }
                    if has_data {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                    has_data = true;
                }
                "id" if !value.contains('\0') => event.id = Some(value.to_string()),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<SseEvent> {
        let mut r = SseReader::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(e) = r.next_event().unwrap() {
            out.push(e);
        }
        out
    }

    #[test]
    fn reads_ids_types_multiline_data_and_skips_comments() {
        let got =
            all(": keep-alive\n\nid: 7\ndata: {\"a\":1}\n\nevent: progress\r\nid: 9\r\ndata: x\r\ndata: y\r\n\r\n");
        assert_eq!(
            got,
            vec![
                SseEvent { event: "message".into(), data: "{\"a\":1}".into(), id: Some("7".into()) },
                SseEvent { event: "progress".into(), data: "x\ny".into(), id: Some("9".into()) },
            ]
        );
    }

    #[test]
    fn a_line_past_the_limit_is_an_error_not_memory() {
        let long = format!("data: {}\n\n", "x".repeat(MAX_LINE + 10));
        let err = SseReader::new(long.as_bytes()).next_event().unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
        let many = "data: y\n".repeat(MAX_EVENT);
        let err = SseReader::new(many.as_bytes()).next_event().unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
    }

    #[test]
    fn an_event_cut_off_by_the_end_is_dropped() {
        assert_eq!(
            all("id: 1\ndata: whole\n\nid: 2\ndata: cut"),
            vec![SseEvent { event: "message".into(), data: "whole".into(), id: Some("1".into()) }]
        );
    }
}
