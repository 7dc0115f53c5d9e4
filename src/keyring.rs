//! The master key ring: every master key this process holds a secret for, by key id. The log says which key
//! seals new values (the last `MasterKeyRotated`, else the genesis key); a ciphertext names the key that
//! sealed it (`cfgl1:<key id>:...`), and the ring opens it with that key. Secrets come from the process, never
//! from the log: `CFGLEDGER_AUTH_ENCRYPTION_SECRET` plus `CFGLEDGER_AUTH_ENCRYPTION_PREVIOUS_SECRETS`
//! (comma-separated), or the lines of a SQLite store's key file, newest first. A key the log retired is
//! left out, so its old ciphertexts stay closed even while its secret is still configured.

use crate::crypto::{self, CryptoError, OpenAad, SecretBox};
use crate::datakeys::{DataKeys, Pending};
use arc_swap::ArcSwap;
use cfgledger_events::master_key::{sealed_data_key, sealed_key_id, shred_subject, ShreddedKey};
use cfgledger_events::Sealer;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
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
    /// The store's data keys, once the ring knows its store: values with a shred subject are sealed under
    /// them (see [`crate::datakeys`]); without a store, everything is sealed under the master key directly.
    data: OnceLock<DataKeys>,
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
        Keyring { keys, current: ArcSwap::from_pointee(current.to_string()), data: OnceLock::new() }
    }

    /// Gives the ring its store's data keys (once; a second store is refused).
    pub fn attach(
        &self,
        store: Arc<dyn crate::store::EventStore>,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Result<(), String> {
        self.data.set(DataKeys::new(store, clock)).map_err(|_| "the key ring already has a store".to_string())
    }

    /// The store's data keys, when the ring has a store.
    pub fn data_keys(&self) -> Option<&DataKeys> {
        self.data.get()
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

    /// A sealer that seals under `key_id` (the state's current key) and opens with the ring; a data key it
    /// makes is stored at once.
    pub fn at<'a>(&'a self, key_id: &'a str) -> RingSealer<'a> {
        RingSealer { ring: self, current: key_id, pending: None, shreds: None }
    }

    /// The writer's sealer: as [`Keyring::at`], but a data key it makes waits in `pending` for the append,
    /// and the data keys `shreds` (the state's) destroyed are never sealed under.
    pub fn for_writer<'a>(
        &'a self,
        key_id: &'a str,
        pending: &'a Pending,
        shreds: &'a BTreeMap<String, ShreddedKey>,
    ) -> RingSealer<'a> {
        RingSealer { ring: self, current: key_id, pending: Some(pending), shreds: Some(shreds) }
    }

    /// Seals `plaintext` bound to `binding` (a [`Sealer`] name): under a data key of its shred subject when
    /// the ring has a store, else under master key `master` directly.
    fn seal_binding(
        &self,
        binding: &str,
        plaintext: &[u8],
        master: &str,
        pending: Option<&Pending>,
        shreds: Option<&BTreeMap<String, ShreddedKey>>,
    ) -> Result<String, String> {
        let aad = crypto::setting_aad(binding);
        match (self.data.get(), shred_subject(binding)) {
            (Some(data), Some(subject)) => {
                let key = data.sealing_key(self, &subject, master, pending, shreds)?;
                Ok(key.seal(&aad, plaintext))
            }
            _ => self.seal_under(master, &aad, plaintext),
        }
    }

    /// Seals under master key `key_id` directly (`cfgl1:`).
    pub fn seal_under(&self, key_id: &str, aad: &str, plaintext: &[u8]) -> Result<String, String> {
        Ok(self.sealing_key(key_id)?.seal(aad, plaintext))
    }

    /// Seals under master key `key_id` directly, the same value in the same place to the same text (see
    /// [`SecretBox::seal_stable`]): what an export writes.
    pub fn seal_stable_under(&self, key_id: &str, aad: &str, plaintext: &[u8]) -> Result<String, String> {
        Ok(self.sealing_key(key_id)?.seal_stable(aad, plaintext))
    }

    /// Opens `text`: a data key's form with its data key, a master key's with the key it names.
    fn open_with(&self, aad: &str, text: &str, pending: Option<&Pending>) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let Some(id) = sealed_data_key(text) else {
            return self.open_master(aad, text);
        };
        let data = self.data.get().ok_or_else(|| CryptoError::DataKeyUnavailable {
            what: aad.to_string(),
            data_key: id.to_string(),
            message: "this key ring has no store to read data keys from".into(),
        })?;
        data.opening_key(self, id, aad, pending)?.open(aad, text)
    }

    fn sealing_key(&self, key_id: &str) -> Result<&SecretBox, String> {
        self.get(key_id).map(|k| &k.sealer).ok_or_else(|| {
            format!(
                "the store seals with master key {key_id}, whose secret this process does not hold: give it in CFGLEDGER_AUTH_ENCRYPTION_SECRET (or {PREVIOUS_SECRETS})"
            )
        })
    }

    /// Opens `text`, sealed under a data key or a master key.
    pub fn open(&self, aad: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open_with(aad, text, None)
    }

    /// Opens `text` sealed under a master key directly, with the key it names.
    pub fn open_master(&self, aad: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
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
}

impl OpenAad for Keyring {
    fn open_aad(&self, aad: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open(aad, text)
    }
}

impl Sealer for Keyring {
    fn seal(&self, key: &str, plaintext: &[u8]) -> Result<String, String> {
        self.seal_binding(key, plaintext, &self.key_id(), None, None)
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
    pending: Option<&'a Pending>,
    shreds: Option<&'a BTreeMap<String, ShreddedKey>>,
}

impl Sealer for RingSealer<'_> {
    fn seal(&self, key: &str, plaintext: &[u8]) -> Result<String, String> {
        self.ring.seal_binding(key, plaintext, self.current, self.pending, self.shreds)
    }

    fn open(&self, key: &str, sealed: &str) -> Result<Vec<u8>, String> {
        crypto::open_setting(self, key, sealed).map(|z| z.to_vec()).map_err(|e| e.to_string())
    }
}

impl OpenAad for RingSealer<'_> {
    fn open_aad(&self, aad: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.ring.open_with(aad, text, self.pending)
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
        assert_eq!(sealed_key_id(&ring.seal_under(&ring.key_id(), "x", b"2").unwrap()), Some(old_id.as_str()));
        ring.set_current(&new_id);
        let under_new = ring.seal_under(&ring.key_id(), "x", b"2").unwrap();
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
        let e = ring.seal_under(&ring.key_id(), "x", b"1").unwrap_err();
        assert!(e.contains("feedfacefeedface"), "{e}");
        let foreign = key("another secret, long enough to be one").sealer.seal("x", b"1");
        ring.set_current(&id);
        let e = ring.open("x", &foreign).unwrap_err().to_string();
        assert!(e.contains(&id), "{e}");
        assert_eq!(split_secrets(" a, ,b,").len(), 2);
    }
}
