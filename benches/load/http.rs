//! The HTTP/1.1 side of the harness: one keep-alive hyper connection per simulated client, requests with an
//! optional bearer token, and whole-response reads (a response body must be drained before the connection
//! can carry the next request).

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use std::net::SocketAddr;

/// One client connection to one server, with the credentials it sends on every request.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
    auth: Option<HeaderValue>,
}

/// A finished exchange: the status and the whole body.
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Reply {
    /// The body as text, shortened for an error line.
    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(200) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_string(),
        }
    }
}

impl Conn {
    /// Opens a TCP connection (Nagle off, as any latency-minded client does) and the HTTP/1.1 handshake.
    pub async fn open(addr: SocketAddr, token: Option<&str>) -> Result<Conn, String> {
        let (sender, host) = crate::common::http::handshake(addr).await?;
        let auth = token.map(|t| HeaderValue::from_str(&format!("Bearer {t}")).expect("a JWT is a valid header value"));
        Ok(Conn { sender, host, auth })
    }

    fn request(&self, method: Method, path: &str, body: Option<Bytes>) -> Request<Full<Bytes>> {
        let mut builder = Request::builder().method(method).uri(path).header(HOST, self.host.clone());
        if let Some(auth) = &self.auth {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        let body = match body {
            Some(json) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                json
            }
            None => Bytes::new(),
        };
        builder.body(Full::new(body)).expect("the request parts are valid")
    }

    async fn head(&mut self, request: Request<Full<Bytes>>) -> Result<Response<Incoming>, String> {
        self.sender.ready().await.map_err(|e| format!("connection lost: {e}"))?;
        self.sender.send_request(request).await.map_err(|e| format!("request failed: {e}"))
    }

    /// Sends one request and reads the whole response.
    pub async fn call(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<Reply, String> {
        let request = self.request(method, path, body);
        let response = self.head(request).await?;
        let status = response.status();
        let body =
            response.into_body().collect().await.map_err(|e| format!("reading the response body: {e}"))?.to_bytes();
        Ok(Reply { status, body })
    }

    /// Sends a GET for an event stream and returns the response with its body still streaming; keep the
    /// `Conn` alive while reading it.
    pub async fn stream(&mut self, path: &str) -> Result<Response<Incoming>, String> {
        let mut request = self.request(Method::GET, path, None);
        request.headers_mut().insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        self.head(request).await
    }
}
