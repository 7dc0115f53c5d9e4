//! Server-sent events cut out of a byte stream, for the benches that watch cfgledger's change stream: each
//! complete event's `data` lines, joined and parsed as JSON. Comments (keep-alives) and events without data
//! yield nothing.

#[derive(Default)]
pub struct SseParser {
    buffer: Vec<u8>,
}

impl SseParser {
    /// Feeds one chunk; returns the JSON data of every event it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<serde_json::Value> {
        // Line ends may be CRLF; the data lines are JSON, which never holds a bare CR.
        self.buffer.extend(chunk.iter().filter(|&&b| b != b'\r'));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = self.buffer.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if data.is_empty() {
                continue;
            }
            if let Ok(json) = serde_json::from_str(&data.join("\n")) {
                events.push(json);
            }
        }
        events
    }
}
