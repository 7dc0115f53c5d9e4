//! The CLI's HTTP client for `--server URL`: `config` commands sent to a running server's admin API instead
//! of opening the store. Every request carries the bearer token and `X-Cfgledger-Client: cli`, so the
//! audit trail records the change as made from the command line. The API's JSON errors
//! (`{"error": {"code", "message", "details"}}`) come back as the same [`Error`] kinds and messages that
//! the local mode produces, so the exit codes and the `error: ...` lines match. The token is never printed.

use crate::error::{Error, ErrorCode};
use crate::model::ErrorBody;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest wait for the connection; a reachable server accepts at once.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a whole answer: above the server's own 30 s request timeout, so that its 503 arrives.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A bearer token as given on the command line, kept out of debug prints.
#[derive(Clone)]
pub struct Token(String);

impl std::str::FromStr for Token {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Token(s.to_string()))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

/// A server the CLI talks to: its base URL (no trailing slash) and the token it presents.
pub(crate) struct Server {
    base: String,
    token: Option<Token>,
    /// The CA file trusted beside the system's roots (`--ca-file`), for `https://`.
    ca_file: Option<PathBuf>,
    agent: ureq::Agent,
    /// `--emergency-bypass`: every request asks for the bypass of the change policy.
    pub bypass: bool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("base", &self.base).field("token", &self.token).finish()
    }
}

/// An error answer of the API, kept whole for the callers that read its `details` (an import's plan).
#[derive(Debug)]
pub(crate) struct ApiFailure {
    pub status: u16,
    pub code: ErrorCode,
    pub message: String,
    pub details: Value,
}

impl Server {
    /// Checks `url` (`http[s]://HOST[:PORT][/PREFIX]`) before any request is made. An empty token counts as none.
    /// `ca_file` (`--ca-file`) is read now, so that a missing or malformed one fails before any request.
    pub fn new(url: &str, token: Option<Token>, ca_file: Option<&Path>) -> Result<Server, Error> {
        let base = url.trim().trim_end_matches('/');
        let lower = base.to_ascii_lowercase();
        let host = lower
            .strip_prefix("http://")
            .or_else(|| lower.strip_prefix("https://"))
            .map(|rest| rest.split('/').next().unwrap_or_default());
        if host.is_none_or(|h| h.is_empty() || h.chars().any(char::is_whitespace)) {
            return Err(Error::input(format!("--server expects a URL such as http://127.0.0.1:4444; got {url:?}")));
        }
        let builder = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirects(0)
            .user_agent(concat!("cfgledger-cli/", env!("CARGO_PKG_VERSION")));
        let agent = cfgledger_client::tls::agent_builder(builder, base, ca_file).map_err(Error::input)?.build();
        let token = token.map(|Token(t)| Token(t.trim().to_string())).filter(|Token(t)| !t.is_empty());
        Ok(Server { base: base.to_string(), token, ca_file: ca_file.map(Path::to_path_buf), agent, bypass: false })
    }

    /// The base URL, as given (without a trailing `/`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The CA file trusted beside the system's roots, which an agent's follower trusts too.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// `GET path?query`.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Error> {
        self.send("GET", path, query, None)?.map_err(|f| self.error(f))
    }

    /// `GET path?query`, the query serialized from a typed request (its fields as query pairs), the answer
    /// deserialized into the typed response.
    pub fn get_json<Q: Serialize, T: DeserializeOwned>(&self, path: &str, query: &Q) -> Result<T, Error> {
        let pairs = query_pairs(query)?;
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.typed(self.get(path, &pairs)?)
    }

    /// `POST path` with a typed body, the answer deserialized into the typed response.
    pub fn post_json<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, Error> {
        let body = serde_json::to_value(body).map_err(|e| Error::internal("a request body as JSON", e))?;
        self.typed(self.post(path, &[], &body)?.map_err(|f| self.error(f))?)
    }

    fn typed<T: DeserializeOwned>(&self, answer: Value) -> Result<T, Error> {
        serde_json::from_value(answer).map_err(|e| Error::Internal {
            context: format!("the server at {} answered in a shape this CLI does not know", self.base),
            source: Some(e.into()),
        })
    }

    /// `PUT path` with a JSON body.
    pub fn put(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.send("PUT", path, &[], Some(body))?.map_err(|f| self.error(f))
    }

    /// `DELETE path?query`.
    pub fn delete(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Error> {
        self.send("DELETE", path, query, None)?.map_err(|f| self.error(f))
    }

    /// `POST path?query` with a JSON body. The API's error answer is returned as it came, for the caller to
    /// read its details before turning it into an [`Error`] with [`Server::error`].
    pub fn post(&self, path: &str, query: &[(&str, &str)], body: &Value) -> Result<Result<Value, ApiFailure>, Error> {
        self.send("POST", path, query, Some(body))
    }

    /// `PUT path` with a typed body, the answer read as `T`.
    pub fn put_json<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, Error> {
        let body = serde_json::to_value(body).map_err(|e| Error::internal("cannot encode the request", e))?;
        self.typed(self.put(path, &body)?)
    }

    /// `DELETE path?query`, the answer read as `T`.
    pub fn delete_json<T: DeserializeOwned>(&self, path: &str, query: &impl Serialize) -> Result<T, Error> {
        let pairs = query_pairs(query)?;
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.typed(self.delete(path, &pairs)?)
    }

    /// `POST path?query` with a JSON body, the answer read as `T`; an API error becomes an [`Error`] that keeps
    /// its code and details.
    pub fn post_query_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &impl Serialize,
        body: &Value,
    ) -> Result<T, Error> {
        let pairs = query_pairs(query)?;
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.typed(self.post(path, &pairs, body)?.map_err(|f| self.error(f))?)
    }

    /// `GET path?query`, the answer read as `T`.
    pub fn get_pairs_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, Error> {
        let answer = self.get(path, query)?;
        self.typed(answer)
    }

    /// `POST path?query` with a typed body, the answer read as `T`. The API's error answer is returned as it
    /// came, for the caller to read its details before turning it into an [`Error`] with [`Server::error`].
    pub fn post_failable_json<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &B,
    ) -> Result<Result<T, ApiFailure>, Error> {
        let body = serde_json::to_value(body).map_err(|e| Error::internal("cannot encode the request", e))?;
        match self.send("POST", path, query, Some(&body))? {
            Ok(answer) => self.typed(answer).map(Ok),
            Err(failure) => Ok(Err(failure)),
        }
    }

    /// `GET path?query` of a route that answers with a text file (the render), the text as it came.
    pub fn get_text(&self, path: &str, query: &impl Serialize) -> Result<String, Error> {
        let pairs = query_pairs(query)?;
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.exchange("GET", path, &pairs, None, |response| {
            let status = response.status();
            response.into_string().map_err(|e| self.not_json(status, e))
        })?
        .map_err(|f| self.error(f))
    }

    /// One request: the outer error when no API answer came (unreachable, not JSON), the inner one when the
    /// API answered with an error.
    fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Result<Value, ApiFailure>, Error> {
        self.exchange(method, path, query, body, |response| {
            let status = response.status();
            response.into_json::<Value>().map_err(|e| self.not_json(status, e))
        })
    }

    /// One request whose successful answer `read` reads.
    fn exchange<T>(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        read: impl FnOnce(ureq::Response) -> Result<T, Error>,
    ) -> Result<Result<T, ApiFailure>, Error> {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base)).set("X-Cfgledger-Client", "cli");
        if let Some(Token(token)) = &self.token {
            req = req.set("Authorization", &format!("Bearer {token}"));
        }
        if self.bypass {
            req = req.set("X-Emergency-Bypass", "true");
        }
        for (name, value) in query {
            req = req.query(name, value);
        }
        let answer = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match answer {
            Ok(response) => read(response).map(Ok),
            Err(ureq::Error::Status(status, response)) => {
                let text = response.into_string().unwrap_or_default();
                let body: ErrorBody = serde_json::from_str(&text).map_err(|e| self.not_json(status, e))?;
                Ok(Err(ApiFailure {
                    status,
                    code: body.error.code,
                    message: body.error.message,
                    details: body.error.details,
                }))
            }
            Err(ureq::Error::Transport(t)) => {
                let why = match (std::error::Error::source(&t), t.message()) {
                    (Some(source), _) => source.to_string(),
                    (None, Some(message)) => message.to_string(),
                    (None, None) => t.kind().to_string(),
                };
                let why = match cfgledger_client::tls::hint(&why) {
                    Some(hint) => format!("{why} ({hint})"),
                    None => why,
                };
                Err(Error::Unreachable {
                    context: format!("cannot reach the server at {}: {why}", self.base),
                    source: None,
                })
            }
        }
    }

    fn not_json(&self, status: u16, why: impl Into<crate::error::Source>) -> Error {
        Error::Unreachable {
            context: format!("the server at {} answered HTTP {status} without the API's JSON", self.base),
            source: Some(why.into()),
        }
    }

    /// The error for an API error answer. Domain rejections keep the server's message, which is the one the
    /// local mode prints; the rest say which server refused and why. The code decides the exit code, so it
    /// is the same as the local mode's.
    pub fn error(&self, f: ApiFailure) -> Error {
        let message = match f.code {
            ErrorCode::Unauthorized if self.token.is_none() => format!(
                "the server at {} requires a token: pass --token or set CFGLEDGER_TOKEN ({})",
                self.base, f.message
            ),
            ErrorCode::Unauthorized => format!("the server at {} refused the token: {}", self.base, f.message),
            ErrorCode::Forbidden => format!("the server at {} refused: {}", self.base, f.message),
            ErrorCode::Unavailable | ErrorCode::Timeout | ErrorCode::RateLimited | ErrorCode::OutcomeUnknown => {
                format!("the server at {} is unavailable: {}", self.base, f.message)
            }
            ErrorCode::Internal => format!("the server at {} failed (HTTP {}): {}", self.base, f.status, f.message),
            _ => f.message,
        };
        Error::Coded { code: f.code, message, details: f.details }
    }
}

/// A typed query as the pairs of a query string: each field that is set, by its serialized name; a list
/// or object field as its JSON text.
pub(crate) fn query_pairs<Q: Serialize>(query: &Q) -> Result<Vec<(String, String)>, Error> {
    let value = serde_json::to_value(query).map_err(|e| Error::internal("a query as JSON", e))?;
    let Value::Object(fields) = value else {
        return Err(Error::input("a query string is made of named fields"));
    };
    Ok(fields
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(name, v)| match v {
            Value::String(s) => (name, s),
            other => (name, other.to_string()),
        })
        .collect())
}

/// `key` as one URL path segment: unreserved characters as they are, every other byte percent-encoded.
pub(crate) fn segment(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_checked_before_any_request() {
        assert_eq!(
            Server::new("http://127.0.0.1:4444/", None, None).map(|s| s.base).ok().as_deref(),
            Some("http://127.0.0.1:4444")
        );
        for bad in ["127.0.0.1:4444", "ftp://host", "http://", "http:// host"] {
            let e = Server::new(bad, None, None).map(|_| ()).unwrap_err().to_string();
            assert_eq!(e, format!("--server expects a URL such as http://127.0.0.1:4444; got {bad:?}"));
        }
        assert!(Server::new("https://config.example", None, None).is_ok(), "TLS is supported (rustls)");
    }

    #[test]
    fn a_ca_file_that_cannot_be_used_fails_before_any_request() {
        let missing = Path::new("/nonexistent/ca.pem");
        let e = Server::new("https://config.example", None, Some(missing)).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        assert!(e.to_string().contains("cannot read the CA file /nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "just text\n").unwrap();
        let e = Server::new("https://config.example", None, Some(&not_pem)).unwrap_err().to_string();
        assert!(e.contains("holds no certificate"), "{e}");
        // Plain http never reads it.
        assert!(Server::new("http://config.example", None, Some(missing)).is_ok());
    }

    #[test]
    fn the_token_is_not_in_the_debug_form() {
        let s = Server::new("http://h", Some(Token("secret-token-value".into())), None)
            .map(|s| format!("{s:?}"))
            .unwrap_or_default();
        assert!(s.contains("http://h") && !s.contains("secret-token-value"), "{s}");
    }

    #[test]
    fn keys_are_encoded_as_one_path_segment() {
        assert_eq!(segment("LOG_LEVEL"), "LOG_LEVEL");
        assert_eq!(segment("a/b c?"), "a%2Fb%20c%3F");
    }
}
