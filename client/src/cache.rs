//! The last-known-good cache: the newest configuration a follower received, so that it can start while the
//! server is unreachable. One JSON file, mode 0600, replaced atomically:
//!
//! ```json
//! {"format": "cfgledger-cache/1", "namespace": "mcpgateway", "server": "http://...", "seq": 42,
//!  "head_hash": "…", "written_at": "2026-12-04T…Z", "key_id": "…", "nonce": "…", "sealed": "…"}
//! ```
//!
//! The values are sealed (XChaCha20-Poly1305) under a key that is never in the file: from
//! `CFGLEDGER_CACHE_KEY` (any secret text, hashed into a key) or else a key file beside it (`FILE.key`, 32
//! random bytes, mode 0600, created on first use; point `--cache-key-file` elsewhere to keep it apart). The
//! namespace, seq and head hash are bound to the ciphertext, so a file edited to claim another seq does not
//! open.

use crate::files;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const FORMAT: &str = "cfgledger-cache/1";
/// The environment variable that may hold the cache key.
pub const KEY_ENV: &str = "CFGLEDGER_CACHE_KEY";

/// The key that seals a cache.
pub struct CacheKey {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheKey").field("id", &self.id()).finish()
    }
}

impl CacheKey {
    /// A key from secret text (hashed, so any length works).
    pub fn from_secret(text: &str) -> CacheKey {
        CacheKey { key: Zeroizing::new(blake3::derive_key("cfgledger cache key v1", text.as_bytes())) }
    }

    /// The key in `path`, created (32 random bytes, mode 0600) when the file does not exist. A key file that
    /// others may read is refused.
    pub fn from_file(path: &Path) -> Result<CacheKey, String> {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::read(path) {
            Ok(bytes) => {
                let mode = std::fs::metadata(path).map(|m| m.permissions().mode()).unwrap_or(0);
                if mode & 0o077 != 0 {
                    return Err(format!(
                        "the cache key file {} may be read by others (mode {:o}); chmod 600 it",
                        path.display(),
                        mode & 0o777
                    ));
                }
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    format!("the cache key file {} holds {} bytes; a key is 32", path.display(), bytes.len())
                })?;
                Ok(CacheKey { key: Zeroizing::new(key) })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = Zeroizing::new([0u8; 32]);
                rand::rngs::OsRng.fill_bytes(key.as_mut());
                files::write_atomically(path, key.as_ref())
                    .map_err(|e| format!("cannot create the cache key file {}: {e}", path.display()))?;
                Ok(CacheKey { key })
            }
            Err(e) => Err(format!("cannot read the cache key file {}: {e}", path.display())),
        }
    }

    /// The key from `CFGLEDGER_CACHE_KEY` when it is set, else from `file`.
    pub fn resolve(file: &Path) -> Result<CacheKey, String> {
        match std::env::var(KEY_ENV) {
            Ok(text) if !text.is_empty() => Ok(CacheKey::from_secret(&text)),
            _ => CacheKey::from_file(file),
        }
    }

    /// A short public fingerprint, so that a cache sealed under another key is told apart from a damaged one.
    pub fn id(&self) -> String {
        blake3::derive_key("cfgledger cache key id v1", self.key.as_ref())[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The default key file of a cache file: `FILE.key` beside it.
pub fn default_key_path(cache: &Path) -> PathBuf {
    let mut name = cache.as_os_str().to_os_string();
    name.push(".key");
    PathBuf::from(name)
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    format: String,
    namespace: String,
    /// What the follower asked for (`secrets=true defaults=false`): a cache is read only by a follower that
    /// asks for the same, so that one without secrets never starts from one with them, nor the reverse.
    #[serde(default)]
    profile: String,
    server: String,
    seq: u64,
    head_hash: String,
    written_at: String,
    key_id: String,
    nonce: String,
    sealed: String,
}

/// What a cache holds once opened. Its `Debug` form names the keys, never the values.
#[derive(Clone, PartialEq)]
pub struct Cached {
    pub namespace: String,
    /// What the follower asked for (see [`crate::Options::profile`]).
    pub profile: String,
    pub server: String,
    pub seq: u64,
    pub head_hash: String,
    /// When it was written (RFC 3339).
    pub written_at: String,
    pub values: Map<String, Value>,
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("namespace", &self.namespace)
            .field("seq", &self.seq)
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn aad(namespace: &str, profile: &str, seq: u64, head_hash: &str) -> Vec<u8> {
    format!("{FORMAT}\n{namespace}\n{profile}\n{seq}\n{head_hash}").into_bytes()
}

/// Writes the cache atomically (mode 0600), its values sealed under `key`.
pub fn write(path: &Path, key: &CacheKey, cached: &Cached) -> Result<(), String> {
    let plain = Zeroizing::new(serde_json::to_vec(&cached.values).map_err(|e| e.to_string())?);
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(key.key.as_ref().into());
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload { msg: &plain, aad: &aad(&cached.namespace, &cached.profile, cached.seq, &cached.head_hash) },
        )
        .map_err(|_| "cannot seal the cache".to_string())?;
    let file = CacheFile {
        format: FORMAT.into(),
        namespace: cached.namespace.clone(),
        profile: cached.profile.clone(),
        server: cached.server.clone(),
        seq: cached.seq,
        head_hash: cached.head_hash.clone(),
        written_at: cached.written_at.clone(),
        key_id: key.id(),
        nonce: B64.encode(nonce),
        sealed: B64.encode(sealed),
    };
    let mut text = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
    text.push(b'\n');
    files::replace(path, &text).map_err(|e| format!("cannot write the cache {}: {e}", path.display()))
}

/// Reads and opens the cache; `Ok(None)` when there is none. A cache of another namespace or profile, or
/// one that does not open under `key`, is an error that says which.
pub fn read(path: &Path, key: &CacheKey, namespace: &str, profile: &str) -> Result<Option<Cached>, String> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read the cache {}: {e}", path.display())),
    };
    let file: CacheFile = serde_json::from_slice(&text)
        .map_err(|e| format!("the cache {} is not a cfgledger cache: {e}", path.display()))?;
    if file.format != FORMAT {
        return Err(format!("the cache {} has format {:?}; this version reads {FORMAT}", path.display(), file.format));
    }
    if file.namespace != namespace {
        return Err(format!("the cache {} holds namespace {:?}, not {namespace:?}", path.display(), file.namespace));
    }
    if file.profile != profile {
        return Err(format!(
            "the cache {} was written by a follower that asked for other settings ({:?}, this one asks for {profile:?}); give each agent its own cache",
            path.display(),
            file.profile
        ));
    }
    if file.key_id != key.id() {
        return Err(format!(
            "the cache {} was sealed under another key (key id {}, this one is {})",
            path.display(),
            file.key_id,
            key.id()
        ));
    }
    let damaged = || format!("the cache {} is damaged: its values do not open", path.display());
    let nonce = B64.decode(&file.nonce).ok().filter(|n| n.len() == 24).ok_or_else(damaged)?;
    let sealed = B64.decode(&file.sealed).map_err(|_| damaged())?;
    let cipher = XChaCha20Poly1305::new(key.key.as_ref().into());
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload { msg: &sealed, aad: &aad(&file.namespace, &file.profile, file.seq, &file.head_hash) },
            )
            .map_err(|_| damaged())?,
    );
    let values: Map<String, Value> = serde_json::from_slice(&plain).map_err(|_| damaged())?;
    Ok(Some(Cached {
        namespace: file.namespace,
        profile: file.profile,
        server: file.server,
        seq: file.seq,
        head_hash: file.head_hash,
        written_at: file.written_at,
        values,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = "secrets=true defaults=false";

    fn sample() -> Cached {
        let mut values = Map::new();
        values.insert("JWT_SECRET_KEY".into(), Value::String("s3cr3t-planted-value".into()));
        values.insert("PORT".into(), Value::from(4444));
        Cached {
            namespace: "mcpgateway".into(),
            profile: "secrets=true defaults=false".into(),
            server: "http://127.0.0.1:1".into(),
            seq: 42,
            head_hash: "ab".repeat(32),
            written_at: "2026-12-04T00:00:00Z".into(),
            values,
        }
    }

    #[test]
    fn round_trips_sealed_with_mode_0600_and_no_plaintext() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.json");
        let key = CacheKey::from_file(&default_key_path(&path)).unwrap();
        write(&path, &key, &sample()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cr3t-planted-value"), "{text}");
        assert!(!text.contains("4444"), "every value is sealed: {text}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(default_key_path(&path)).unwrap().permissions().mode() & 0o777, 0o600);
        let again = CacheKey::from_file(&default_key_path(&path)).unwrap();
        assert_eq!(read(&path, &again, "mcpgateway", PROFILE).unwrap(), Some(sample()));
    }

    #[test]
    fn another_key_a_claimed_seq_or_another_namespace_do_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.json");
        let key = CacheKey::from_secret("one");
        write(&path, &key, &sample()).unwrap();
        let err = read(&path, &CacheKey::from_secret("two"), "mcpgateway", PROFILE).unwrap_err();
        assert!(err.contains("sealed under another key"), "{err}");
        assert!(read(&path, &key, "other", PROFILE).unwrap_err().contains("holds namespace \"mcpgateway\""));
        let edited = std::fs::read_to_string(&path).unwrap().replace("\"seq\": 42", "\"seq\": 43");
        std::fs::write(&path, edited).unwrap();
        let other = read(&path, &key, "mcpgateway", "secrets=false defaults=false").unwrap_err();
        assert!(other.contains("give each agent its own cache"), "{other}");
        assert!(read(&path, &key, "mcpgateway", PROFILE).unwrap_err().contains("damaged"));
        assert_eq!(read(&dir.path().join("none.json"), &key, "mcpgateway", PROFILE).unwrap(), None);
    }

    #[test]
    fn a_key_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, [7u8; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(CacheKey::from_file(&path).unwrap_err().contains("chmod 600"));
    }
}
