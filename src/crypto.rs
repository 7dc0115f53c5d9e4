//! Encryption of sensitive values: XChaCha20-Poly1305 under a key derived from `AUTH_ENCRYPTION_SECRET`
//! by Argon2id with the store's salt. The text form is `cfgl1:<key id>:<base64url(nonce || ciphertext)>`,
//! and the associated data names where the value lives (`setting/JWT_SECRET_KEY/value`), so a ciphertext
//! copied onto another key or entity fails to open.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cfgledger_events::event::EncryptionInfo;
use cfgledger_events::{Hash, Sealer};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::fmt;
use zeroize::Zeroizing;

pub const ALGORITHM: &str = "xchacha20poly1305";
const TEXT_VERSION: &str = "cfgl1";
/// OWASP's recommended Argon2id parameters (19 MiB, 2 passes, 1 lane).
const DEFAULT_KDF: &str = "argon2id:m=19456,t=2,p=1";
/// The most memory (KiB), passes and lanes a stored or imported key derivation may ask for.
const MAX_KDF_MEMORY_KIB: u32 = 262_144;
const MAX_KDF_PASSES: u32 = 16;
const MAX_KDF_LANES: u32 = 8;
const NONCE_LEN: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("unsupported encryption: {0}")]
    Unsupported(String),
    #[error("malformed ciphertext for {0}")]
    Malformed(String),
    #[error("{what} was encrypted under key {found} but the current key is {current}: is AUTH_ENCRYPTION_SECRET the one this store was created with?")]
    WrongKey { what: String, found: String, current: String },
    #[error("cannot decrypt {0}: the ciphertext was altered or belongs elsewhere")]
    Tampered(String),
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("{what} was sealed under data key {data_key}, which this store no longer holds: it was shredded (cfgledger key status lists what was), or the store's data keys were not copied with its log")]
    DataKeyGone { what: String, data_key: String },
    #[error("cannot read data key {data_key} for {what}: {message}")]
    DataKeyUnavailable { what: String, data_key: String, message: String },
}

/// A derived key with its id. The key bytes are wiped on drop.
pub struct SecretBox {
    key: Zeroizing<[u8; 32]>,
    key_id: String,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBox {{ key_id: {} }}", self.key_id)
    }
}

fn kdf_params(kdf: &str) -> Result<Params, CryptoError> {
    let rest =
        kdf.strip_prefix("argon2id:").ok_or_else(|| CryptoError::Unsupported(format!("key derivation {kdf:?}")))?;
    let (mut m, mut t, mut p) = (None, None, None);
    for part in rest.split(',') {
        let (name, value) = part.split_once('=').ok_or_else(|| CryptoError::Unsupported(kdf.to_string()))?;
        let value: u32 = value.parse().map_err(|_| CryptoError::Unsupported(kdf.to_string()))?;
        match name {
            "m" => m = Some(value),
            "t" => t = Some(value),
            "p" => p = Some(value),
            _ => return Err(CryptoError::Unsupported(kdf.to_string())),
        }
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return Err(CryptoError::Unsupported(kdf.to_string()));
    };
    // The parameters can come from an uploaded document: bounded, so one request cannot claim gigabytes of
    // memory or minutes of CPU (this build writes m=19456, t=2, p=1).
    if m > MAX_KDF_MEMORY_KIB || t > MAX_KDF_PASSES || p > MAX_KDF_LANES {
        return Err(CryptoError::Unsupported(format!(
            "{kdf}: the key derivation asks for more than m={MAX_KDF_MEMORY_KIB}, t={MAX_KDF_PASSES}, p={MAX_KDF_LANES}"
        )));
    }
    Params::new(m, t, p, Some(32)).map_err(|e| CryptoError::Kdf(e.to_string()))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl SecretBox {
    /// Derives the key that `info` describes from `secret`.
    pub fn derive(secret: &[u8], info: &EncryptionInfo) -> Result<SecretBox, CryptoError> {
        if info.algorithm != ALGORITHM {
            return Err(CryptoError::Unsupported(format!("algorithm {:?}", info.algorithm)));
        }
        let salt = decode_hex(&info.salt).ok_or_else(|| CryptoError::Unsupported("a salt that is not hex".into()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, kdf_params(&info.kdf)?);
        let mut key = Zeroizing::new([0u8; 32]);
        argon.hash_password_into(secret, &salt, key.as_mut()).map_err(|e| CryptoError::Kdf(e.to_string()))?;
        let key_id = key_id_of(&key);
        Ok(SecretBox { key, key_id })
    }

    /// A fresh salt and the key it derives: what a new store records in its genesis event.
    pub fn create(secret: &[u8]) -> Result<(SecretBox, EncryptionInfo), CryptoError> {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let mut info = EncryptionInfo {
            algorithm: ALGORITHM.to_string(),
            kdf: DEFAULT_KDF.to_string(),
            salt: encode_hex(&salt),
            key_id: String::new(),
        };
        let sb = SecretBox::derive(secret, &info)?;
        info.key_id = sb.key_id.clone();
        Ok((sb, info))
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Encrypts `plaintext` bound to `aad` (where the value lives).
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        format!("{TEXT_VERSION}:{}:{}", self.key_id, seal_body(&self.key, &nonce, aad, plaintext))
    }

    /// [`SecretBox::seal`] with a synthetic nonce (a keyed hash of `aad` and `plaintext` under a key derived
    /// from this one), so that the same value in the same place seals to the same text: what an export
    /// writes, so that exporting an unchanged store twice gives the same file. It shows only that a value
    /// did not change, which the stored ciphertext showed before; two different values never share a nonce.
    pub fn seal_stable(&self, aad: &str, plaintext: &[u8]) -> String {
        let nonce_key = Zeroizing::new(blake3::derive_key("cfgledger 2026 stable export nonce", self.key.as_ref()));
        let mut hasher = blake3::Hasher::new_keyed(&nonce_key);
        hasher.update(&(aad.len() as u64).to_le_bytes());
        hasher.update(aad.as_bytes());
        hasher.update(plaintext);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&hasher.finalize().as_bytes()[..NONCE_LEN]);
        format!("{TEXT_VERSION}:{}:{}", self.key_id, seal_body(&self.key, &nonce, aad, plaintext))
    }

    /// Decrypts a text form made by [`SecretBox::seal`] with the same `aad`.
    pub fn open(&self, aad: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let malformed = || CryptoError::Malformed(aad.to_string());
        let mut parts = text.splitn(3, ':');
        let (Some(version), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed());
        };
        if version != TEXT_VERSION {
            return Err(CryptoError::Unsupported(format!("ciphertext version {version:?}")));
        }
        if key_id != self.key_id {
            return Err(CryptoError::WrongKey {
                what: aad.to_string(),
                found: key_id.to_string(),
                current: self.key_id.clone(),
            });
        }
        open_body(&self.key, aad, body)
    }
}

/// `base64url(nonce || ciphertext)` of `plaintext` under `key`, bound to `aad`.
fn seal_body(key: &[u8; 32], nonce: &[u8; NONCE_LEN], aad: &str, plaintext: &[u8]) -> String {
    let cipher = XChaCha20Poly1305::new(key.into());
    // Encryption with a valid key and nonce length cannot fail; a failure would be a library bug.
    let ct = cipher
        .encrypt(XNonce::from_slice(nonce), Payload { msg: plaintext, aad: aad.as_bytes() })
        .expect("XChaCha20-Poly1305 encryption does not fail");
    let mut body = Vec::with_capacity(NONCE_LEN + ct.len());
    body.extend_from_slice(nonce);
    body.extend_from_slice(&ct);
    URL_SAFE_NO_PAD.encode(body)
}

/// The inverse of [`seal_body`].
fn open_body(key: &[u8; 32], aad: &str, body: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let malformed = || CryptoError::Malformed(aad.to_string());
    let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| malformed())?;
    if body.len() < NONCE_LEN + 16 {
        return Err(malformed());
    }
    let (nonce, ct) = body.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: aad.as_bytes() })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Tampered(aad.to_string()))
}

/// A data key: 32 random bytes sealing the values of one subject (`cfgl2:<id>:...`), kept wrapped by a
/// master key outside the log; destroying its wrapped copy is what shredding is. Wiped on drop.
pub struct DataKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey {{ id: {} }}", self.id)
    }
}

impl DataKey {
    /// A new random key with a random id.
    pub fn generate() -> DataKey {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        DataKey { id: encode_hex(&id), key }
    }

    /// The key of `id` from its unwrapped bytes.
    pub fn from_bytes(id: &str, bytes: &[u8]) -> Result<DataKey, CryptoError> {
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::Malformed(format!("data key {id}")))?;
        Ok(DataKey { id: id.to_string(), key: Zeroizing::new(key) })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key's bytes, for wrapping under a master key.
    pub fn bytes(&self) -> &[u8] {
        self.key.as_ref()
    }

    /// Encrypts `plaintext` bound to `aad`: `cfgl2:<id>:<base64url(nonce || ciphertext)>`.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let body = seal_body(&self.key, &nonce, aad, plaintext);
        format!("{}:{}:{body}", cfgledger_events::master_key::DATA_KEY_FORM, self.id)
    }

    /// Decrypts a text form made by [`DataKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let mut parts = text.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(cfgledger_events::master_key::DATA_KEY_FORM), Some(id), Some(body)) if id == self.id => {
                open_body(&self.key, aad, body)
            }
            _ => Err(CryptoError::Malformed(aad.to_string())),
        }
    }
}

/// The associated data a data key is wrapped with: its id and its subject, so a wrapped key copied onto
/// another row fails to open.
pub fn data_key_aad(id: &str, subject: &str) -> String {
    format!("datakey/{id}/{subject}")
}

fn key_id_of(key: &[u8; 32]) -> String {
    let digest = Hash(*blake3::hash(key).as_bytes());
    digest.to_hex()[..16].to_string()
}

/// Where a setting's ciphertext lives: the associated data that binds it there.
pub fn setting_aad(key: &str) -> String {
    format!("setting/{key}/value")
}

/// Opens a setting's ciphertext. A value sealed by a pre-namespace build is bound to its bare key: when
/// the qualified key (`cfgledger:JWT_SECRET_KEY`) does not open it and a pre-namespace log would have placed
/// the bare key in the same namespace, the bare key's binding is tried.
pub fn open_setting<B: OpenAad + ?Sized>(sb: &B, key: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    use cfgledger_events::namespace;
    if !key.contains(namespace::SEP) {
        // A bare key names the default namespace, where the value was sealed under its qualified key.
        return open_setting(sb, &namespace::join(namespace::DEFAULT, key), sealed);
    }
    match sb.open_aad(&setting_aad(key), sealed) {
        Err(CryptoError::Tampered(what)) => {
            let (ns, bare) = cfgledger_events::namespace::split(key);
            if key.contains(cfgledger_events::namespace::SEP)
                && cfgledger_events::namespace::legacy_namespace(bare) == ns
            {
                sb.open_aad(&setting_aad(bare), sealed).map_err(|_| CryptoError::Tampered(what))
            } else {
                Err(CryptoError::Tampered(what))
            }
        }
        other => other,
    }
}

/// What opens a ciphertext bound to its associated data: one key ([`SecretBox`]) or a key ring
/// ([`crate::keyring::Keyring`], which picks the key the text form names).
pub trait OpenAad {
    fn open_aad(&self, aad: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError>;
}

impl OpenAad for DataKey {
    fn open_aad(&self, aad: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open(aad, text)
    }
}

impl OpenAad for SecretBox {
    fn open_aad(&self, aad: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open(aad, text)
    }
}

impl Sealer for SecretBox {
    fn seal(&self, key: &str, plaintext: &[u8]) -> Result<String, String> {
        Ok(SecretBox::seal(self, &setting_aad(key), plaintext))
    }

    fn open(&self, key: &str, sealed: &str) -> Result<Vec<u8>, String> {
        open_setting(self, key, sealed).map(|z| z.to_vec()).map_err(|e| e.to_string())
    }
}

/// A random secret, hex: the content of a generated key file.
pub fn random_secret() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    Zeroizing::new(encode_hex(bytes.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb() -> SecretBox {
        let info = EncryptionInfo {
            algorithm: ALGORITHM.into(),
            kdf: "argon2id:m=64,t=1,p=1".into(),
            salt: "00112233445566778899aabbccddeeff".into(),
            key_id: String::new(),
        };
        SecretBox::derive(b"correct horse battery staple", &info).unwrap()
    }

    #[test]
    fn a_stable_seal_is_the_same_text_for_the_same_value_in_the_same_place_and_opens() {
        let b = sb();
        let one = b.seal_stable("setting/A/value", b"\"s3cret\"");
        assert_eq!(one, b.seal_stable("setting/A/value", b"\"s3cret\""));
        assert_ne!(one, b.seal_stable("setting/A/value", b"\"other\""));
        assert_ne!(one, b.seal_stable("setting/B/value", b"\"s3cret\""));
        let nonce = |t: &str| URL_SAFE_NO_PAD.decode(t.rsplit(':').next().unwrap()).unwrap()[..NONCE_LEN].to_vec();
        assert_ne!(nonce(&one), nonce(&b.seal_stable("setting/A/value", b"\"other\"")), "no nonce is shared");
        assert_eq!(&b.open("setting/A/value", &one).unwrap()[..], b"\"s3cret\"");
        assert!(b.open("setting/B/value", &one).is_err());
    }

    #[test]
    fn a_data_key_seals_its_own_form_and_opens_only_its_own() {
        let key = DataKey::generate();
        let text = key.seal("setting/A/value", b"1");
        assert!(text.starts_with(&format!("cfgl2:{}:", key.id())), "{text}");
        assert_eq!(&key.open("setting/A/value", &text).unwrap()[..], b"1");
        assert!(matches!(key.open("setting/B/value", &text), Err(CryptoError::Tampered(_))));
        let other = DataKey::from_bytes(key.id(), &[7u8; 32]).unwrap();
        assert!(other.open("setting/A/value", &text).is_err());
        assert!(DataKey::generate().open("setting/A/value", &text).is_err(), "another key's id does not match");
        assert!(DataKey::from_bytes("x", &[1u8; 31]).is_err());
    }

    #[test]
    fn round_trip_and_binding() {
        let b = sb();
        let text = b.seal("setting/A/value", b"\"s3cret\"");
        assert!(text.starts_with(&format!("cfgl1:{}:", b.key_id())));
        assert!(!text.contains("s3cret"));
        assert_eq!(&b.open("setting/A/value", &text).unwrap()[..], b"\"s3cret\"");
        assert!(matches!(b.open("setting/B/value", &text), Err(CryptoError::Tampered(_))));
        let mut flipped = text.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(b.open("setting/A/value", std::str::from_utf8(&flipped).unwrap()).is_err());
    }

    #[test]
    fn another_secret_is_refused_with_both_key_ids() {
        let b = sb();
        let (other, _) = SecretBox::create(b"another secret entirely").unwrap();
        let text = other.seal("setting/A/value", b"1");
        let e = b.open("setting/A/value", &text).unwrap_err().to_string();
        assert!(e.contains(other.key_id()) && e.contains(b.key_id()), "{e}");
    }
}
