//! One keep-alive HTTP/1.1 connection (hyper, Nagle off, as any latency-minded client opens it), shared by
//! the benches that talk to a server over HTTP: the sender and the `Host` header its requests carry.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// Connects to `addr` and performs the HTTP/1.1 handshake; the connection runs on its own task.
pub async fn handshake(addr: SocketAddr) -> Result<(SendRequest<Full<Bytes>>, HeaderValue), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
    let (sender, connection) =
        http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    tokio::spawn(async move {
        // A connection ends when the server goes away; the request on it reports the error.
        let _ = connection.await;
    });
    let host = HeaderValue::from_str(&addr.to_string()).expect("a socket address is a valid Host header");
    Ok((sender, host))
}

/// Sends `request` once the connection is ready and reads the whole answer: its status and body.
#[allow(dead_code)] // the benches that send their own way
pub async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), String> {
    sender.ready().await.map_err(|e| format!("the connection closed: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok((status, body.to_bytes()))
}
