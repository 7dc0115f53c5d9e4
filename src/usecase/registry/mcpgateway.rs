//! MCP Gateway's own export files (the layout of 1.1.0 and 1.0.x). Its names: a tool's slug (`slug`, the
//! gateway's rule), a tag as `{"id", "label"}` (`tag_object`), the protocol revision it writes (`VERSION`).
//!
//! Its credentials: each entity's `auth_value` is base64url (no padding) of a 12-byte nonce
//! followed by the AES-256-GCM ciphertext and tag, under a key that is the SHA-256 of that gateway's
//! `AUTH_ENCRYPTION_SECRET`; the plaintext is a JSON object of auth headers. Given that secret, an import
//! opens the values and turns them back into credential fields (`auth_token`, `auth_username` and
//! `auth_password`, or `auth_headers`), which the store then seals under its own key. The way back
//! ([`headers`] and [`seal`]) writes a store's credentials in that same form, for `cfgledger export
//! --format mcpgateway`.

use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The `encryption_method` an MCP Gateway export names.
pub const METHOD: &str = "AES-256-GCM";

/// The `version` MCP Gateway 1.1.0 writes in its exports (its `settings.protocol_version`).
pub const VERSION: &str = "2025-11-25";

/// Fields MCP Gateway writes that it derives from something else (its database id, the URL, the update
/// time, the description a tool was created with): not configuration, and written by one kind of export and
/// not the other, so an import does not keep them.
pub const DERIVED_FIELDS: [&str; 8] = [
    "original_description",
    "sse_endpoint",
    "websocket_endpoint",
    "jsonrpc_endpoint",
    "health_check",
    "last_modified",
    "created_at",
    "updated_at",
];

/// MCP Gateway's slug of a name (`mcpgateway.utils.create_slug.slugify` with its default separator `-`):
/// lower case, apostrophes inside words dropped, every run of characters other than letters and digits a
/// single `-`, no `-` at either end, and the result folded to ASCII (`æ` to `ae`, `ß` to `ss`, `ø` to `o`,
/// accents dropped by NFKD). A full export names a server's tools by this slug of the tool's name.
pub fn slug(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let lower = text.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let mut kept = String::with_capacity(lower.len());
    for (i, c) in chars.iter().enumerate() {
        // `(\w)['’](\w)` loses its apostrophe.
        let apostrophe = matches!(c, '\'' | '\u{2019}');
        if apostrophe && i > 0 && i + 1 < chars.len() && word(chars[i - 1]) && word(chars[i + 1]) {
            continue;
        }
        kept.push(*c);
    }
    let mut dashed = String::with_capacity(kept.len());
    for c in kept.chars() {
        if c.is_alphanumeric() {
            dashed.push(c);
        } else if !dashed.ends_with('-') {
            dashed.push('-');
        }
    }
    let trimmed = dashed.trim_matches('-').replace('æ', "ae").replace('ß', "ss").replace('ø', "o");
    trimmed.nfkd().filter(char::is_ascii).collect()
}

/// Python's `\w` (for `str` patterns): letters, digits and the underscore.
fn word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A tag as MCP Gateway 1.1.0 writes it: `{"id": its normalized form, "label": as given}`. The id is the
/// gateway's `TagValidator.normalize`: trimmed, lower case, runs of whitespace and underscores as `-`.
pub fn tag_object(label: &str) -> Value {
    let mut tag = Map::new();
    tag.insert("id".into(), Value::String(tag_id(label)));
    tag.insert("label".into(), Value::String(label.to_string()));
    Value::Object(tag)
}

/// The gateway's `TagValidator.normalize` of a label.
fn tag_id(label: &str) -> String {
    label.trim().to_lowercase().split_whitespace().collect::<Vec<_>>().join("-").replace('_', "-")
}

/// Whether MCP Gateway keeps a tag: its normalized id is 2 to 100 characters of lower-case letters, digits,
/// `-`, `:` and `.`, starting and ending with a letter or digit. It drops other tags silently on import.
pub fn tag_kept(label: &str) -> bool {
    let id = tag_id(label);
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | ':' | '.');
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (2..=100).contains(&id.len()) && id.chars().all(allowed) && edge(id.chars().next()) && edge(id.chars().last())
}

/// A gateway's key: AES-256-GCM under SHA-256 of its `AUTH_ENCRYPTION_SECRET`, derived once for a whole
/// document rather than once per value.
pub struct GatewayKey {
    cipher: Aes256Gcm,
}

impl GatewayKey {
    pub fn new(secret: &str) -> GatewayKey {
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&Sha256::digest(secret.as_bytes()));
        GatewayKey { cipher: Aes256Gcm::new(key.as_ref().into()) }
    }

    /// Opens one MCP Gateway `auth_value` (or a sealed header or query parameter) into its JSON object.
    pub fn open(&self, value: &str) -> Result<Map<String, Value>, String> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value.trim_end_matches('='))
            .map_err(|_| "it is not base64url".to_string())?;
        if raw.len() < 12 + 16 {
            return Err("it is too short to hold a nonce and a tag".into());
        }
        let (nonce, ciphertext) = raw.split_at(12);
        let plaintext = Zeroizing::new(
            self.cipher
                .decrypt(Nonce::from_slice(nonce), ciphertext)
                .map_err(|_| "the secret does not open it (or it was altered)".to_string())?,
        );
        serde_json::from_slice(&plaintext).map_err(|_| "its plaintext is not a JSON object".to_string())
    }

    /// Seals a JSON object the way MCP Gateway does: a random 12-byte nonce and the AES-256-GCM ciphertext and
    /// tag, base64url without padding.
    pub fn seal(&self, object: &Map<String, Value>) -> Result<String, String> {
        use rand::RngCore;
        let plaintext = Zeroizing::new(serde_json::to_vec(object).map_err(|e| e.to_string())?);
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_slice())
            .map_err(|_| "AES-256-GCM failed".to_string())?;
        let mut out = nonce.to_vec();
        out.extend(ciphertext);
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out))
    }
}

/// The most an OAuth bundle may ask of Argon2id (memory in KiB, passes, lanes): the gateway's default is
/// 64 MiB, 3 and 1; a file asking for more than 256 MiB, 10 and 4 is refused rather than allowed to tie up
/// the machine.
const V2_LIMITS: (u32, u32, u32) = (256 * 1024, 10, 4);

/// The most `v2:` secrets one document may ask an import to open (each one Argon2id derivation).
pub const V2_PER_DOCUMENT: usize = 64;

/// Opens a secret MCP Gateway sealed with its `EncryptionService` (an OAuth `client_secret` and its kin):
/// `v2:{"salt", "token", "t", "m", "p"}`, a Fernet token under the Argon2id key of the gateway's secret with
/// that salt and those costs.
pub fn open_v2(secret: &str, bundle: &str) -> Result<Zeroizing<String>, String> {
    #[derive(serde::Deserialize)]
    struct Bundle {
        salt: String,
        token: String,
        t: u32,
        m: u32,
        p: u32,
    }
    let json = bundle.strip_prefix("v2:").unwrap_or(bundle);
    let b: Bundle =
        serde_json::from_str(json).map_err(|_| "it is not a v2 bundle (salt, token, t, m, p)".to_string())?;
    if b.m > V2_LIMITS.0 || b.t > V2_LIMITS.1 || b.p > V2_LIMITS.2 {
        return Err(format!("its Argon2id costs (m={}, t={}, p={}) exceed what an import allows", b.m, b.t, b.p));
    }
    let salt =
        base64::engine::general_purpose::STANDARD.decode(&b.salt).map_err(|_| "its salt is not base64".to_string())?;
    let params = argon2::Params::new(b.m, b.t, b.p, Some(32)).map_err(|e| format!("its Argon2id costs: {e}"))?;
    let kdf = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    kdf.hash_password_into(secret.as_bytes(), &salt, key.as_mut()).map_err(|e| format!("Argon2id: {e}"))?;
    let encoded = Zeroizing::new(base64::engine::general_purpose::URL_SAFE.encode(key.as_ref()));
    let fernet = fernet::Fernet::new(&encoded).ok_or_else(|| "the derived key is not a Fernet key".to_string())?;
    let plain = fernet.decrypt(&b.token).map_err(|_| "the secret does not open it (or it was altered)".to_string())?;
    String::from_utf8(plain).map(Zeroizing::new).map_err(|_| "its plaintext is not text".to_string())
}

/// The auth headers MCP Gateway keeps for a store's credential fields: `Authorization: Bearer` for a token,
/// `Authorization: Basic` for a user and password, else the custom headers (`auth_headers` as an object or
/// as MCP Gateway's list of `{"key", "value"}`, and `auth_header_key`/`auth_header_value`).
pub fn headers(credentials: &Map<String, Value>) -> Map<String, Value> {
    let text = |f: &str| credentials.get(f).and_then(Value::as_str);
    let mut out = Map::new();
    if let Some(token) = text("auth_token") {
        out.insert("Authorization".into(), Value::String(format!("Bearer {token}")));
    }
    if let (Some(user), Some(pass)) = (text("auth_username"), text("auth_password")) {
        let pair = Zeroizing::new(format!("{user}:{pass}"));
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
        out.insert("Authorization".into(), Value::String(format!("Basic {encoded}")));
    }
    match credentials.get("auth_headers") {
        Some(Value::Object(map)) => out.extend(map.clone()),
        Some(Value::Array(list)) => {
            for item in list {
                if let (Some(k), Some(v)) = (item.get("key").and_then(Value::as_str), item.get("value")) {
                    out.insert(k.to_string(), v.clone());
                }
            }
        }
        _ => {}
    }
    if let (Some(k), Some(v)) = (text("auth_header_key"), credentials.get("auth_header_value")) {
        out.insert(k.to_string(), v.clone());
    }
    out
}

/// MCP Gateway's name for an auth type (`authheaders` for custom headers).
pub fn auth_type(ours: &str) -> &str {
    match ours {
        "headers" => "authheaders",
        other => other,
    }
}

/// The credential fields an entity of `auth_type` gets from MCP Gateway's headers: a bearer token, a basic
/// user and password, or the headers themselves.
pub fn credentials(auth_type: &str, mut headers: Map<String, Value>) -> Map<String, Value> {
    let authorization = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string);
    // `Scheme rest`, the scheme compared without regard to case; never sliced inside a character.
    let after = |text: &str, scheme: &str| {
        text.split_once(' ')
            .filter(|(s, rest)| s.eq_ignore_ascii_case(scheme) && !rest.is_empty())
            .map(|(_, r)| r.to_string())
    };
    let mut out = Map::new();
    let taken = match (auth_type, authorization.as_deref()) {
        ("bearer", Some(a)) => after(a, "bearer").map(|token| {
            out.insert("auth_token".into(), Value::String(token));
        }),
        ("basic", Some(a)) => after(a, "basic").and_then(|encoded| {
            let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (user, pass) = text.split_once(':')?;
            out.insert("auth_username".into(), Value::String(user.into()));
            out.insert("auth_password".into(), Value::String(pass.into()));
            Some(())
        }),
        _ => None,
    };
    if taken.is_some() {
        // The other auth headers (a tool's secret headers travel here) stay, as custom headers.
        headers.retain(|k, _| !k.eq_ignore_ascii_case("authorization"));
    }
    if !headers.is_empty() {
        out.insert("auth_headers".into(), Value::Object(headers));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::Aead;

    /// A bundle the real gateway 1.1.0 wrote (`EncryptionService("test-gateway-secret-for-v2-bundles-0123",
    /// time_cost=2, memory_cost=8192).encrypt_secret("oauth-client-secret-1")`) opens to what it sealed, and
    /// only with that secret.
    #[test]
    fn an_oauth_secret_sealed_by_the_gateway_opens_with_its_secret() {
        let bundle = r#"v2:{"version":"v2","kdf":"argon2id","t":2,"m":8192,"p":1,"salt":"6u6q/xn0CkpClbFWFDlmqQ==","token":"gAAAAABrEbgYbkTx_J01erI3tx329WBRc6rEpZLZk-1SXT6MafYjVgRW0Ed9I-SGQXtyApRz--UNXzk0v0pXzcYZKNgBf1FBxjUQfd99Oft6NPdjkODptFI="}"#;
        let opened = open_v2("test-gateway-secret-for-v2-bundles-0123", bundle).expect("opens");
        assert_eq!(opened.as_str(), "oauth-client-secret-1");
        assert!(open_v2("another-secret", bundle).unwrap_err().contains("does not open"));
        let greedy = bundle.replace(r#""m":8192"#, r#""m":4194304"#);
        assert!(open_v2("test-gateway-secret-for-v2-bundles-0123", &greedy).unwrap_err().contains("exceed"));
    }

    /// The gateway's own doctests of `slugify`, and the case the issue names.
    #[test]
    fn slugs_follow_the_gateways_rule() {
        for (text, want) in [
            ("Hello World", "hello-world"),
            ("Test-Case_123", "test-case-123"),
            ("Café & Restaurant", "cafe-restaurant"),
            ("user@example.com", "user-example-com"),
            ("Don't Stop", "dont-stop"),
            ("It's Working", "its-working"),
            ("", ""),
            ("   ", ""),
            ("---test---", "test"),
            ("Multiple   Spaces", "multiple-spaces"),
            ("Naïve résumé", "naive-resume"),
            ("Zürich", "zurich"),
            ("weather_api", "weather-api"),
        ] {
            assert_eq!(slug(text), want, "slug({text:?})");
        }
    }

    /// The gateway's own doctests of `validate_tags_field`.
    #[test]
    fn tags_are_written_as_the_gateway_normalizes_them() {
        assert_eq!(tag_object("Analytics"), serde_json::json!({"id": "analytics", "label": "Analytics"}));
        assert_eq!(
            tag_object("machine learning"),
            serde_json::json!({"id": "machine-learning", "label": "machine learning"})
        );
        assert_eq!(tag_object("ML_ops"), serde_json::json!({"id": "ml-ops", "label": "ML_ops"}));
        assert!(tag_kept("API") && tag_kept("team:platform") && tag_kept("v1.2"));
        assert!(tag_kept("two words"), "the gateway normalizes spaces before it validates");
        assert!(!tag_kept("a") && !tag_kept("-x-") && !tag_kept("ok!"));
    }

    fn seal(secret: &str, plaintext: &[u8]) -> String {
        let key = Sha256::digest(secret.as_bytes());
        let cipher = Aes256Gcm::new_from_slice(&key).unwrap();
        let nonce = [7u8; 12];
        let mut out = nonce.to_vec();
        out.extend(cipher.encrypt(Nonce::from_slice(&nonce), plaintext).unwrap());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
    }

    #[test]
    fn sealed_headers_open_to_the_same_credentials() {
        let creds = serde_json::json!({"auth_username": "ann", "auth_password": "pw:with:colons"});
        let sealed = GatewayKey::new("s3").seal(&headers(creds.as_object().unwrap())).unwrap();
        assert_eq!(
            credentials("basic", GatewayKey::new("s3").open(&sealed).unwrap()),
            creds.as_object().unwrap().clone()
        );
        let creds = serde_json::json!({"auth_token": "tok"});
        let sealed = GatewayKey::new("s3").seal(&headers(creds.as_object().unwrap())).unwrap();
        assert_eq!(
            credentials("bearer", GatewayKey::new("s3").open(&sealed).unwrap()),
            creds.as_object().unwrap().clone()
        );
        let listed = serde_json::json!({"auth_headers": [{"key": "X-Api-Key", "value": "k"}], "auth_header_key": "X-B", "auth_header_value": "b"});
        let opened = GatewayKey::new("s3")
            .open(&GatewayKey::new("s3").seal(&headers(listed.as_object().unwrap())).unwrap())
            .unwrap();
        assert_eq!(Value::Object(opened), serde_json::json!({"X-Api-Key": "k", "X-B": "b"}));
        assert!(GatewayKey::new("other").open(&sealed).is_err());
    }

    #[test]
    fn a_gateway_value_opens_with_its_secret_only() {
        let v = seal("gw-secret", br#"{"Authorization": "Bearer abc"}"#);
        let headers = GatewayKey::new("gw-secret").open(&v).unwrap();
        assert_eq!(
            credentials("bearer", headers),
            serde_json::json!({"auth_token": "abc"}).as_object().unwrap().clone()
        );
        assert!(GatewayKey::new("other").open(&v).unwrap_err().contains("does not open"));
        let basic = seal("s", br#"{"Authorization": "Basic dXNlcjpwYXNz"}"#);
        let creds = credentials("basic", GatewayKey::new("s").open(&basic).unwrap());
        assert_eq!(creds["auth_username"], "user");
        assert_eq!(creds["auth_password"], "pass");
    }

    /// Headers beside `Authorization` (a tool's secret headers travel there) are kept as custom headers, and
    /// a value with a multi-byte character where the scheme ends is read, not sliced.
    #[test]
    fn every_auth_header_is_kept_and_odd_values_never_panic() {
        let headers = serde_json::json!({"Authorization": "Basic dXNlcjpwYXNz", "X-Api-Key": "k-1"});
        let creds = credentials("basic", headers.as_object().unwrap().clone());
        assert_eq!(
            Value::Object(creds),
            serde_json::json!({"auth_username": "user", "auth_password": "pass", "auth_headers": {"X-Api-Key": "k-1"}})
        );
        for odd in ["Beare€x", "Bearer", "€", "Basic €€€", "Basic"] {
            let headers = serde_json::json!({ "Authorization": odd });
            let creds = credentials("bearer", headers.as_object().unwrap().clone());
            assert_eq!(Value::Object(creds), serde_json::json!({"auth_headers": {"Authorization": odd}}), "{odd}");
            let _ = credentials("basic", headers.as_object().unwrap().clone());
        }
    }
}
