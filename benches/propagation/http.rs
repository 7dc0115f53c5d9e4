//! The HTTP side of the propagation bench: one keep-alive HTTP/1.1 connection (hyper, Nagle off) per role,
//! a `PUT` that returns the seq the server committed, and the `/admin/config/watch` stream split into
//! events, each stamped with the moment the bytes that completed it were read from the socket.

use crate::common::sse::SseParser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use std::net::SocketAddr;
use std::time::Instant;
use tokio::sync::mpsc;

/// One connection to one server, with the bearer token it sends on every request.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
    auth: HeaderValue,
}

/// One event of the watch stream: its seq, and when it arrived.
pub struct Arrival {
    pub seq: u64,
    pub at: Instant,
}

impl Conn {
    pub async fn open(addr: SocketAddr, token: &str) -> Result<Conn, String> {
        let (sender, host) = crate::common::http::handshake(addr).await?;
        let auth = HeaderValue::from_str(&format!("Bearer {token}")).expect("a JWT is a valid header value");
        Ok(Conn { sender, host, auth })
    }

    fn request(&self, method: Method, path: &str, body: Bytes) -> Request<Full<Bytes>> {
        Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .expect("the request parts are valid")
    }

    /// `PUT path` with `{"value": value}`; returns the seq of the change from the 200 response, once the
    /// whole response has been read.
    pub async fn put(&mut self, path: &str, value: i64) -> Result<u64, String> {
        let body = Bytes::from(serde_json::json!({ "value": value, "reason": "propagation bench" }).to_string());
        let request = self.request(Method::PUT, path, body);
        self.sender.ready().await.map_err(|e| format!("connection lost: {e}"))?;
        let response = self.sender.send_request(request).await.map_err(|e| format!("PUT {path} failed: {e}"))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| format!("PUT {path}: {e}"))?.to_bytes();
        if status != StatusCode::OK {
            return Err(format!("PUT {path} answered {status}: {}", String::from_utf8_lossy(&body).trim()));
        }
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["seq"].as_u64())
            .ok_or_else(|| format!("PUT {path} answered without a seq: {}", String::from_utf8_lossy(&body).trim()))
    }

    /// Opens the watch stream (from the instance's current head) and returns the events it delivers. The
    /// connection lives in the reading task, which ends when the stream or the receiver goes.
    pub async fn watch(mut self) -> Result<mpsc::UnboundedReceiver<Arrival>, String> {
        let mut request = self.request(Method::GET, "/admin/config/watch", Bytes::new());
        request.headers_mut().insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        self.sender.ready().await.map_err(|e| format!("connection lost: {e}"))?;
        let response = self.sender.send_request(request).await.map_err(|e| format!("GET watch failed: {e}"))?;
        if response.status() != StatusCode::OK {
            let status = response.status();
            let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            return Err(format!(
                "GET /admin/config/watch answered {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _conn = self;
            let mut body = response.into_body();
            let mut sse = SseParser::default();
            while let Some(Ok(frame)) = body.frame().await {
                let at = Instant::now();
                let Ok(data) = frame.into_data() else { continue };
                for seq in change_seqs(&mut sse, &data) {
                    if tx.send(Arrival { seq, at }).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// The seqs of the change events a chunk of the stream completed.
fn change_seqs(parser: &mut SseParser, chunk: &[u8]) -> Vec<u64> {
    parser.push(chunk).into_iter().filter_map(|json| json["seq"].as_u64()).collect()
}
