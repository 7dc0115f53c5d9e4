//! The master key ring: every master key this process holds a secret for, by key id. The log says which key
//! seals new values (the last `MasterKeyRotated`, else the genesis key); a ciphertext names the key that
//! sealed it (`cfgl1:<key id>:...`), and the ring opens it with that key. Secrets come from the process, never
//! from the log: `CFGLEDGER_AUTH_ENCRYPTION_SECRET` plus `CFGLEDGER_AUTH_ENCRYPTION_PREVIOUS_SECRETS`
//! (comma-separated), or the lines of a SQLite store's key file, newest first. A key the log retired is
//! left out, so its old ciphertexts stay closed even while its secret is still configured.

use crate::crypto::{self, CryptoError, OpenAad, SecretBox};
use arc_swap::ArcSwap;
use cfgledger_events::master_key::sealed_key_id;
use cfgledger_events::Sealer;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The environment variable holding older master secrets (comma-separated), kept while values or history
/// sealed under them must still open.
pub const PREVIOUS_SECRETS: &str = "CFGLEDGER_AUTH_ENCRYPTION_PREVIOUS_SECRETS";

/// One key of the ring, with the secret it was derived from.
pub struct RingKey {
    pub sealer: SecretBox,
    pub secret: Zeroizing<String>,
}

/// The master keys of this process. Cheap to read; the current key id is swapped when the log rotates.
pub struct Keyring {
    keys: Vec<RingKey>,
    current: ArcSwap<String>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.sealer.key_id()).collect();
        write!(f, "Keyring {{ keys: {ids:?}, current: {} }}", self.current.load())
    }
}

impl Keyring {
    /// A ring of `keys` whose sealing key is `current` (which need not be in it: sealing then fails, naming
    /// the missing key).
    pub fn new(keys: Vec<RingKey>, current: &str) -> Keyring {
        Keyring { keys, current: ArcSwap::from_pointee(current.to_string()) }
    }

    /// The id of the key that seals new values (the log's current key).
    pub fn key_id(&self) -> String {
        self.current.load().as_ref().clone()
    }

    /// Follows the log: `key_id` seals from now on.
    pub fn set_current(&self, key_id: &str) {
        if self.current.load().as_str() != key_id {
            self.current.store(Arc::new(key_id.to_string()));
        }
    }

    /// The key of that id, if this process holds its secret.
    pub fn get(&self, key_id: &str) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.sealer.key_id() == key_id)
    }

    /// Every key id of the ring, in the order the secrets were given (newest first).
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.sealer.key_id().to_string()).collect()
    }

    /// A sealer that seals under `key_id` (the state's current key, for `decide`) and opens with the ring.
    pub fn at<'a>(&'a self, key_id: &'a str) -> RingSealer<'a> {
        RingSealer { ring: self, current: key_id }
    }

    fn sealing_key(&self, key_id: &str) -> Result<&SecretBox, String> {
        self.get(key_id).map(|k| &k.sealer).ok_or_else(|| {
            format!(
                "the store seals with master key {key_id}, whose secret this process does not hold: give it in CFGLEDGER_AUTH_ENCRYPTION_SECRET (or {PREVIOUS_SECRETS})"
            )
        })
    }

    /// Opens `text` with the key it names.
    pub fn open(&self, aad: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match sealed_key_id(text).and_then(|id| self.get(id)) {
            Some(key) => key.sealer.open(aad, text),
            None => {
                // The ring has no such key: the current key's refusal names both ids, as before rotations.
                let current = self.key_id();
                match self.get(&current) {
                    Some(key) => key.sealer.open(aad, text),
                    None => Err(CryptoError::WrongKey {
                        what: aad.to_string(),
                        found: sealed_key_id(text).unwrap_or("?").to_string(),
                        current,
                    }),
                }
            }
        }
    }

    /// Seals under the current key.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<String, String> {
        Ok(self.sealing_key(&self.key_id())?.seal(aad, plaintext))
    }
}

impl OpenAad for Keyring {
    fn open_aad(&self, aad: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open(aad, text)
    }
}

impl Sealer for Keyring {
    fn seal(&self, key: &str, plaintext: &[u8]) -> Result<String, String> {
        Keyring::seal(self, &crypto::setting_aad(key), plaintext)
    }

    fn open(&self, key: &str, sealed: &str) -> Result<Vec<u8>, String> {
        crypto::open_setting(self, key, sealed).map(|z| z.to_vec()).map_err(|e| e.to_string())
    }
}

/// The ring sealing under one named key: what the writer hands `decide`, with the key the state it decides
/// against names, so a rotation another instance appended is followed at once.
pub struct RingSealer<'a> {
    ring: &'a Keyring,
    current: &'a str,
}

impl Sealer for RingSealer<'_> {
    fn seal(&self, key: &str, plaintext: &[u8]) -> Result<String, String> {
        Ok(self.ring.sealing_key(self.current)?.seal(&crypto::setting_aad(key), plaintext))
    }

    fn open(&self, key: &str, sealed: &str) -> Result<Vec<u8>, String> {
        Sealer::open(self.ring, key, sealed)
    }
}

/// Splits a list of previous secrets (`a,b`), leaving out empty entries.
pub fn split_secrets(list: &str) -> Vec<Zeroizing<String>> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Zeroizing::new(s.to_string())).collect()
}

/// Puts a new random secret at the top of a SQLite store's key file (its newest line), keeping the others:
/// what `key rotate --generate` does before the rotation, so the new key is in the ring it opens. The file is
/// replaced whole (written and synced under a temporary name, 0600, then renamed), so a crash leaves the old
/// file or the new one, never half of either.
pub fn add_to_key_file(path: &std::path::Path) -> Result<(), crate::error::Error> {
    let mut secrets = vec![crypto::random_secret()];
    secrets.extend(crate::ledger::open::read_key_file_all(path)?);
    write_key_file(path, &secrets)
}

/// Drops `secret` from a key file (a retired key's), keeping the others in order.
pub fn remove_from_key_file(path: &std::path::Path, secret: &str) -> Result<bool, crate::error::Error> {
    let secrets = crate::ledger::open::read_key_file_all(path)?;
    let kept: Vec<Zeroizing<String>> = secrets.iter().filter(|s| s.as_str() != secret).cloned().collect();
    if kept.len() == secrets.len() || kept.is_empty() {
        return Ok(false);
    }
    write_key_file(path, &kept)?;
    Ok(true)
}

fn write_key_file(path: &std::path::Path, secrets: &[Zeroizing<String>]) -> Result<(), crate::error::Error> {
    use std::io::Write;
    let fail = |what: &str, e: std::io::Error| {
        crate::error::Error::io(format!("cannot {what} key file {}", path.display()), e)
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let tmp = std::path::PathBuf::from(tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut text = Zeroizing::new(String::new());
    for s in secrets {
        text.push_str(s);
        text.push('\n');
    }
    let written = opts.open(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail("replace", e));
    }
    #[cfg(unix)]
    if let Some(dir) = path.parent().map(|p| if p.as_os_str().is_empty() { std::path::Path::new(".") } else { p }) {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| fail("sync the directory of the", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfgledger_events::event::EncryptionInfo;

    fn key(secret: &str) -> RingKey {
        let info = EncryptionInfo {
            algorithm: crypto::ALGORITHM.into(),
            kdf: "argon2id:m=64,t=1,p=1".into(),
            salt: "00112233445566778899aabbccddeeff".into(),
            key_id: String::new(),
        };
        RingKey { sealer: SecretBox::derive(secret.as_bytes(), &info).unwrap(), secret: Zeroizing::new(secret.into()) }
    }

    #[test]
    fn opens_with_the_named_key_and_seals_with_the_current_one() {
        let (old, new) = (key("old secret, long enough to be one"), key("new secret, long enough to be one"));
        let (old_id, new_id) = (old.sealer.key_id().to_string(), new.sealer.key_id().to_string());
        let under_old = old.sealer.seal("setting/a:B/value", b"1");
        let ring = Keyring::new(vec![new, old], &old_id);
        assert_eq!(&ring.open("setting/a:B/value", &under_old).unwrap()[..], b"1");
        assert_eq!(sealed_key_id(&ring.seal("x", b"2").unwrap()), Some(old_id.as_str()));
        ring.set_current(&new_id);
        let under_new = ring.seal("x", b"2").unwrap();
        assert_eq!(sealed_key_id(&under_new), Some(new_id.as_str()));
        assert_eq!(&ring.open("x", &under_new).unwrap()[..], b"2");
        let at_old = ring.at(&old_id);
        assert_eq!(sealed_key_id(&Sealer::seal(&at_old, "a:B", b"3").unwrap()), Some(old_id.as_str()));
    }

    #[test]
    fn a_key_the_ring_lacks_is_named() {
        let only = key("only secret, long enough to be one");
        let id = only.sealer.key_id().to_string();
        let ring = Keyring::new(vec![only], "feedfacefeedface");
        let e = ring.seal("x", b"1").unwrap_err();
        assert!(e.contains("feedfacefeedface"), "{e}");
        let foreign = key("another secret, long enough to be one").sealer.seal("x", b"1");
        ring.set_current(&id);
        let e = ring.open("x", &foreign).unwrap_err().to_string();
        assert!(e.contains(&id), "{e}");
        assert_eq!(split_secrets(" a, ,b,").len(), 2);
    }
}
