//! Authentication of the admin API: roles, bearer tokens (JWT, jsonwebtoken) and password hashes (argon2id,
//! the argon2 crate's PHC strings). The HTTP side, which extracts the principal from a request, is in
//! `api::extract`.
//!
//! Tokens end by the log, so that every instance of a fleet agrees: a token names its signing key (`kid`,
//! a [`KeyRing`] of the store's `JWT_SECRET_KEY` and the keys of `SigningKeyRotated` events, each retired when
//! a later rotation's grace ends), and the credential version of its subject (`ver`, the seq of the event
//! that last set the user's password or role, 0 for a subject that is not a user), which [`check_standing`]
//! compares with the projection: removing a user, or changing its password or role, refuses every token
//! issued before.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use zeroize::Zeroizing;

/// What a principal may do. Ordered: each role can do what the ones after it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Every read and every write.
    PlatformAdmin,
    /// Reads, the audit trail and exports.
    Auditor,
    /// Reads.
    Viewer,
    /// A machine reader (an agent): the render of a namespace, secrets included, and nothing else. Outside
    /// the order above: no other route admits it (`Caller`), and no other role reads secrets but an admin.
    ConfigReader,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::Auditor => "auditor",
            Role::Viewer => "viewer",
            Role::ConfigReader => "config_reader",
        }
    }

    /// Whether this role includes everything `needed` may do.
    pub fn allows(self, needed: Role) -> bool {
        match (self, needed) {
            (Role::ConfigReader, Role::ConfigReader) => true,
            (Role::ConfigReader, _) | (_, Role::ConfigReader) => self == Role::PlatformAdmin,
            _ => self <= needed,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "platform_admin" => Ok(Role::PlatformAdmin),
            "auditor" => Ok(Role::Auditor),
            "viewer" => Ok(Role::Viewer),
            "config_reader" => Ok(Role::ConfigReader),
            other => Err(format!("role expects one of platform_admin, auditor, viewer, config_reader; got {other:?}")),
        }
    }
}

/// The claims of a cfgledger token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    /// Not before: cfgledger issues none, and checks one that another issuer with the key set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// The subject's credential version when the token was issued (see [`check_standing`]); a token of a
    /// build before credential versions has none, which reads as 0.
    #[serde(default)]
    pub ver: u64,
    /// The id of the key that signed it (from the header; never part of the claims' JSON).
    #[serde(skip)]
    pub kid: Option<String>,
}

/// How far ahead of the verifier's clock a token's `iat` or `nbf` may be: clocks of a fleet differ a little.
const LEEWAY_SECS: u64 = 60;

const ISSUER: &str = "cfgledger";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("JWT_ALGORITHM expects HS256, HS384 or HS512; got {0:?}")]
    Algorithm(String),
    #[error("the token is expired")]
    Expired,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("cannot sign the token: {0}")]
    Signing(String),
    #[error("cannot hash the password: {0}")]
    Hashing(String),
    /// Validly signed, but ended by the log: its user was removed, or its password or role changed.
    #[error("the token was revoked: {0}")]
    Revoked(String),
    /// It names a credential version this instance has not applied yet (another instance issued it after a
    /// change this one has still to read): retry.
    #[error("this server has not yet applied seq {0}, which the token was issued after; retry")]
    Ahead(u64),
}

/// Signs and verifies tokens with one HMAC key.
#[derive(Clone)]
pub struct TokenKeys {
    /// The key's id (`cfgledger_events::decide::signing_key_id`), written in the header of every token it signs.
    kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The key of the web UI's CSRF tokens, derived from the signing key, so every instance of a fleet
    /// that shares the signing key accepts the same session's CSRF token.
    csrf: [u8; 32],
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeys").field("kid", &self.kid).field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8], algorithm: &str) -> Result<TokenKeys, AuthError> {
        let algorithm = match algorithm {
            "HS256" => Algorithm::HS256,
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            other => return Err(AuthError::Algorithm(other.to_string())),
        };
        Ok(TokenKeys {
            kid: cfgledger_events::decide::signing_key_id(secret),
            algorithm,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            csrf: blake3::derive_key("cfgledger 2026-12 web UI CSRF token", secret),
        })
    }

    /// The CSRF token of a session: a keyed hash of its token, so it needs no server-side storage and an
    /// attacker who cannot read the session cookie cannot compute it.
    pub fn csrf_token(&self, session_token: &str) -> String {
        blake3::keyed_hash(&self.csrf, session_token.as_bytes()).to_hex().to_string()
    }

    /// Whether `given` is the CSRF token of `session_token` (compared in constant time).
    pub fn csrf_matches(&self, session_token: &str, given: &str) -> bool {
        blake3::Hash::from_hex(given.trim())
            .is_ok_and(|given| given == blake3::keyed_hash(&self.csrf, session_token.as_bytes()))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Keys for another secret, with this one's algorithm (a rotated key of the same ring).
    pub fn sibling(&self, secret: &[u8]) -> TokenKeys {
        TokenKeys {
            kid: cfgledger_events::decide::signing_key_id(secret),
            algorithm: self.algorithm,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            csrf: blake3::derive_key("cfgledger 2026-12 web UI CSRF token", secret),
        }
    }

    /// A token for `sub` (a subject that is not a user: credential version 0) with `role`, valid for
    /// `ttl_secs` from `now` (Unix seconds).
    pub fn issue(&self, sub: &str, role: Role, now: u64, ttl_secs: u64) -> Result<String, AuthError> {
        self.issue_versioned(sub, role, 0, now, ttl_secs)
    }

    /// A token for `sub` at credential version `ver` (see [`check_standing`]).
    pub fn issue_versioned(
        &self,
        sub: &str,
        role: Role,
        ver: u64,
        now: u64,
        ttl_secs: u64,
    ) -> Result<String, AuthError> {
        if sub.trim().is_empty() {
            return Err(AuthError::Signing("a token needs a subject (--sub); got an empty one".into()));
        }
        let claims = Claims {
            sub: sub.to_string(),
            role,
            iat: now,
            exp: now.saturating_add(ttl_secs),
            iss: ISSUER.into(),
            nbf: None,
            ver,
            kid: None,
        };
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(|e| AuthError::Signing(e.to_string()))
    }

    /// The claims of a token this key signed, if it is not expired at `now` (Unix seconds, from the injected
    /// clock: see [`unix_seconds`]). Only the configured algorithm is accepted, so a token cannot choose a
    /// weaker one (or `none`).
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(self.algorithm);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        // jsonwebtoken would read the system clock; expiry is checked below against the caller's `now`.
        validation.validate_exp = false;
        validation.leeway = 0;
        let mut claims = self.decode(token, &validation)?;
        claims.kid = Some(self.kid.clone());
        if claims.exp < now {
            return Err(AuthError::Expired);
        }
        // A token must name who acts: an empty subject would act, and be audited, as no one.
        if claims.sub.trim().is_empty() {
            return Err(AuthError::Invalid("it names no subject (sub is empty)".into()));
        }
        let horizon = now.saturating_add(LEEWAY_SECS);
        if claims.iat > horizon {
            return Err(AuthError::Invalid("it was issued in the future (iat); check the clocks".into()));
        }
        if claims.nbf.is_some_and(|nbf| nbf > horizon) {
            return Err(AuthError::Invalid("it is not valid yet (nbf)".into()));
        }
        Ok(claims)
    }

    fn decode(&self, token: &str, validation: &Validation) -> Result<Claims, AuthError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, validation).map(|d| d.claims).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            AuthError::Invalid(
                match e.kind() {
                    K::ExpiredSignature => return AuthError::Expired,
                    K::InvalidSignature => "its signature does not match this store's key",
                    K::InvalidAlgorithm | K::InvalidAlgorithmName => "it is signed with another algorithm",
                    K::InvalidIssuer => "it was not issued by cfgledger",
                    K::MissingRequiredClaim(_) => "it lacks a required claim",
                    K::ImmatureSignature => "it is not valid yet",
                    K::Json(_) => "its claims are not cfgledger's (sub, role, iat, exp, iss)",
                    _ => "it is not a well-formed JWT",
                }
                .to_string(),
            )
        })
    }
}

/// An argon2id PHC string for `password`, with a random salt and the crate's default (OWASP) parameters.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`. A malformed hash never matches.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash that matches no password, checked when a login names an unknown user so that the answer takes
/// as long as for a known one (no user enumeration by timing).
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let password = crate::crypto::random_secret();
        hash_password(&password).unwrap_or_default()
    })
}

/// Whether `name` could be a user name (the rule `decide` enforces when users are added).
pub fn plausible_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// A password read from a line of input, without its line ending.
pub fn password_from_line(line: &str) -> Zeroizing<String> {
    Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string())
}

/// A time as the whole seconds since the Unix epoch that JWT claims count (0 before the epoch).
pub fn unix_seconds(time: cfgledger_events::Timestamp) -> u64 {
    u64::try_from(time.as_micros().div_euclid(1_000_000)).unwrap_or(0)
}

/// One key of a [`KeyRing`], and when it stops verifying (Unix microseconds; `None` while it signs).
#[derive(Debug, Clone)]
pub struct RingKey {
    pub keys: TokenKeys,
    pub retires_at: Option<i64>,
}

/// The keys that sign and verify the admin API's tokens: the store's `JWT_SECRET_KEY` (the base key) and the
/// keys the log's rotations added. The newest signs; each older one verifies until its retirement (the
/// grace of the rotation after it), by the `kid` a token names.
#[derive(Debug, Clone)]
pub struct KeyRing {
    /// The seq of the last rotation folded in (0 before any): the projection's `SigningKeys::version`.
    pub version: u64,
    /// Oldest first; the base key first. Never empty.
    keys: Vec<RingKey>,
    verified: VerifiedTokens,
}

/// How many verified tokens a ring remembers before it starts over.
const VERIFIED_TOKENS: usize = 10_000;

/// The claims of tokens this ring has verified, by the blake3 hash of the token's text (never the text), so
/// that a client sending the same token with every request pays for the signature and the decoding once.
/// Only what verified is kept, so a forged token cannot fill it; the checks that depend on the time (expiry,
/// the key's retirement) are made again on every use. A ring is rebuilt whenever the log's signing keys
/// change, which starts it empty; a clone starts empty too.
#[derive(Default)]
struct VerifiedTokens(std::sync::RwLock<std::collections::HashMap<[u8; 32], Claims>>);

impl Clone for VerifiedTokens {
    fn clone(&self) -> Self {
        VerifiedTokens::default()
    }
}

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.0.read().map_or(0, |m| m.len());
        write!(f, "VerifiedTokens({held})")
    }
}

impl KeyRing {
    /// A ring of the base key alone, retired at `base_retires_at`, to which `add` appends rotated keys.
    pub fn new(base: TokenKeys, base_retires_at: Option<i64>) -> KeyRing {
        KeyRing {
            version: 0,
            keys: vec![RingKey { keys: base, retires_at: base_retires_at }],
            verified: VerifiedTokens::default(),
        }
    }

    /// Appends a rotated key (the ring's signing key from now on, unless another follows).
    pub fn add(&mut self, keys: TokenKeys, retires_at: Option<i64>, version: u64) {
        // A key named twice (a rotation back to the base key) verifies once, with the later retirement.
        self.keys.retain(|k| k.keys.kid != keys.kid);
        self.keys.push(RingKey { keys, retires_at });
        self.version = version;
    }

    /// The key that signs new tokens.
    pub fn signing(&self) -> &TokenKeys {
        // `keys` is never empty: `new` puts the base key in and `add` only replaces a key by a later one.
        &self.keys[self.keys.len() - 1].keys
    }

    pub fn keys(&self) -> &[RingKey] {
        &self.keys
    }

    /// The key a token names (no `kid`: the base key, as tokens of earlier builds were signed).
    fn key_for(&self, token: &str) -> Result<&RingKey, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid("it is not a well-formed JWT".into()))?;
        match header.kid {
            None => Ok(&self.keys[0]),
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.keys.kid == kid)
                .ok_or_else(|| AuthError::Invalid(format!("its signing key {kid} is not one of this store's"))),
        }
    }

    /// The claims of a token signed by a key of the ring that is not retired at `now`, checked as
    /// [`TokenKeys::verify`] checks them.
    pub fn verify(&self, token: &str, now: cfgledger_events::Timestamp) -> Result<Claims, AuthError> {
        let key = self.key_for(token)?;
        if key.retires_at.is_some_and(|t| t <= now.as_micros()) {
            return Err(AuthError::Invalid(format!(
                "its signing key {} was retired by a key rotation; log in again",
                key.keys.kid
            )));
        }
        key.keys.verify(token, unix_seconds(now))
    }

    /// [`KeyRing::verify`] for a token whose blake3 hash is `id`: a token this ring verified before is not
    /// decoded again, only checked against the time (its expiry and its key's retirement).
    pub fn verify_known(
        &self,
        token: &str,
        id: &blake3::Hash,
        now: cfgledger_events::Timestamp,
    ) -> Result<Claims, AuthError> {
        let known = self.verified.0.read().ok().and_then(|m| m.get(id.as_bytes()).cloned());
        if let Some(claims) = known {
            if self.retires_at(claims.kid.as_deref()).is_some_and(|t| t <= now.as_micros()) {
                return Err(AuthError::Invalid(format!(
                    "its signing key {} was retired by a key rotation; log in again",
                    claims.kid.as_deref().unwrap_or("(the base key)")
                )));
            }
            if claims.exp < unix_seconds(now) {
                return Err(AuthError::Expired);
            }
            return Ok(claims);
        }
        let claims = self.verify(token, now)?;
        if let Ok(mut verified) = self.verified.0.write() {
            if verified.len() >= VERIFIED_TOKENS {
                verified.clear();
            }
            verified.insert(*id.as_bytes(), claims.clone());
        }
        Ok(claims)
    }

    /// When the key of `kid` retires (Unix microseconds), if it is in the ring and retiring.
    pub fn retires_at(&self, kid: Option<&str>) -> Option<i64> {
        match kid {
            None => self.keys[0].retires_at,
            Some(kid) => self.keys.iter().find(|k| k.keys.kid == kid).and_then(|k| k.retires_at),
        }
    }

    /// Whether the key of `kid` is gone from the ring or retired at `now`.
    pub fn retired(&self, kid: Option<&str>, now: cfgledger_events::Timestamp) -> bool {
        let known = kid.is_none_or(|kid| self.keys.iter().any(|k| k.keys.kid == kid));
        !known || self.retires_at(kid).is_some_and(|t| t <= now.as_micros())
    }

    /// The CSRF token of a web UI session: keyed by the key that signed the session's token, so that a
    /// rotation renews it with the session.
    pub fn csrf_token(&self, session_token: &str) -> String {
        self.key_for(session_token).map_or(&self.keys[0].keys, |k| &k.keys).csrf_token(session_token)
    }

    /// Whether `given` is the CSRF token of `session_token`.
    pub fn csrf_matches(&self, session_token: &str, given: &str) -> bool {
        self.key_for(session_token).is_ok_and(|k| k.keys.csrf_matches(session_token, given))
    }
}

/// The credential version of `sub` in `state`: the seq of the event that last set the user's password or
/// role (or added it), or 0 when no user has that name.
pub fn credential_version(state: &cfgledger_projections::SettingsState, sub: &str) -> u64 {
    state.user(sub).map_or(0, |u| u.credentials_seq)
}

/// Whether a validly signed token still stands by the log: its subject's credential version and role are
/// the ones it was issued with. A user removed, or whose password or role changed, refuses every token
/// issued before; a subject that is not a user (a machine token) stands while no user takes its name.
pub fn check_standing(claims: &Claims, state: &cfgledger_projections::SettingsState) -> Result<(), AuthError> {
    let user = state.user(&claims.sub);
    let current = credential_version(state, &claims.sub);
    if claims.ver != current {
        if claims.ver > state.applied_seq {
            return Err(AuthError::Ahead(claims.ver));
        }
        return Err(AuthError::Revoked(match (user, claims.ver) {
            (None, _) => format!("user {} was removed after it was issued; log in again", claims.sub),
            (Some(_), 0) => format!(
                "it was issued before user {} had its current credentials (or by a build without credential versions); log in again",
                claims.sub
            ),
            (Some(_), _) => {
                format!("the password or role of user {} changed since it was issued; log in again", claims.sub)
            }
        }));
    }
    match user {
        Some(u) if u.role != claims.role.as_str() => Err(AuthError::Revoked(format!(
            "it carries role {} but user {} has role {}",
            claims.role, claims.sub, u.role
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(b"0123456789abcdef0123456789abcdef", "HS256").unwrap()
    }

    /// 2023-11-14T22:13:20Z: tokens are checked against the time they are given, not the system clock.
    const NOW: u64 = 1_700_000_000;

    #[test]
    fn a_token_round_trips_and_carries_its_role() {
        let now = NOW;
        let token = keys().issue("alice", Role::Auditor, now, 60).unwrap();
        let claims = keys().verify(&token, now).unwrap();
        assert_eq!((claims.sub.as_str(), claims.role), ("alice", Role::Auditor));
    }

    #[test]
    fn a_token_expires_by_the_clock_it_is_verified_with() {
        let token = keys().issue("alice", Role::Viewer, NOW, 60).unwrap();
        assert!(keys().verify(&token, NOW + 60).is_ok(), "valid through its exp second");
        assert_eq!(keys().verify(&token, NOW + 61), Err(AuthError::Expired));
        assert!(keys().verify(&token, NOW - 60).is_ok(), "a clock a minute behind still accepts it");
        assert!(keys().verify(&token, NOW - 3600).is_err(), "issued an hour in the verifier's future");
        assert_eq!(unix_seconds(cfgledger_events::Timestamp::from_micros(1_700_000_000_999_999)), NOW);
        assert_eq!(unix_seconds(cfgledger_events::Timestamp::from_micros(-1)), 0);
    }

    #[test]
    fn expired_foreign_and_tampered_tokens_are_refused() {
        let now = NOW;
        let old = keys().issue("alice", Role::Viewer, now - 120, 60).unwrap();
        assert_eq!(keys().verify(&old, now), Err(AuthError::Expired));
        let other = TokenKeys::new(b"another key that is long enough!!", "HS256").unwrap();
        let foreign = other.issue("alice", Role::PlatformAdmin, now, 60).unwrap();
        assert!(matches!(keys().verify(&foreign, now), Err(AuthError::Invalid(_))));
        let token = keys().issue("alice", Role::Viewer, now, 60).unwrap();
        let (head, _) = token.split_once('.').unwrap();
        let forged_claims = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            format!(r#"{{"sub":"alice","role":"platform_admin","iat":{now},"exp":{},"iss":"cfgledger"}}"#, now + 60),
        );
        let signature = token.rsplit('.').next().unwrap();
        assert!(keys().verify(&format!("{head}.{forged_claims}.{signature}"), now).is_err());
        let hs512 = TokenKeys::new(b"0123456789abcdef0123456789abcdef", "HS512").unwrap();
        assert!(
            keys().verify(&hs512.issue("alice", Role::Viewer, now, 60).unwrap(), now).is_err(),
            "algorithm is pinned"
        );
    }

    #[test]
    fn a_token_without_a_subject_or_not_valid_yet_is_refused() {
        let k = keys();
        let sign = |claims: &Claims| jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &k.encoding).unwrap();
        let base = Claims {
            sub: "alice".into(),
            role: Role::PlatformAdmin,
            iat: NOW,
            exp: NOW + 600,
            iss: ISSUER.into(),
            nbf: None,
            ver: 0,
            kid: None,
        };
        assert!(k.verify(&sign(&base), NOW).is_ok());
        for sub in ["", "  "] {
            let e = k.verify(&sign(&Claims { sub: sub.into(), ..base.clone() }), NOW).unwrap_err();
            assert_eq!(e, AuthError::Invalid("it names no subject (sub is empty)".into()));
        }
        let later = Claims { nbf: Some(NOW + 300), ..base.clone() };
        assert_eq!(k.verify(&sign(&later), NOW), Err(AuthError::Invalid("it is not valid yet (nbf)".into())));
        assert!(k.verify(&sign(&later), NOW + 300).is_ok());
        assert!(k.verify(&sign(&Claims { nbf: Some(NOW + 30), ..base.clone() }), NOW).is_ok(), "within the leeway");
    }

    #[test]
    fn tokens_name_their_key_and_a_ring_verifies_each_until_it_retires() {
        use cfgledger_events::Timestamp;
        let at = |secs: u64| Timestamp::from_micros(i64::try_from(secs).unwrap() * 1_000_000);
        let base = keys();
        let rotated = base.sibling(b"a rotated key that is long enough, 0001");
        let old = base.issue("alice", Role::Viewer, NOW, 3600).unwrap();
        let header = jsonwebtoken::decode_header(&old).unwrap();
        assert_eq!(header.kid.as_deref(), Some(base.kid()), "every token names its key");
        assert_ne!(base.kid(), rotated.kid());
        // A rotation at NOW + 10 with a grace of 60 s: the base key verifies through NOW + 69 s, not at NOW + 70.
        let mut ring = KeyRing::new(base.clone(), Some(at(NOW + 70).as_micros()));
        ring.add(rotated.clone(), None, 7);
        assert_eq!((ring.version, ring.signing().kid()), (7, rotated.kid()));
        let new = ring.signing().issue("alice", Role::Viewer, NOW + 10, 3600).unwrap();
        assert_eq!(ring.verify(&old, at(NOW + 69)).unwrap().kid.as_deref(), Some(base.kid()));
        let refused = ring.verify(&old, at(NOW + 70)).unwrap_err();
        assert!(matches!(&refused, AuthError::Invalid(m) if m.contains("retired by a key rotation")), "{refused:?}");
        assert!(ring.verify(&new, at(NOW + 70)).is_ok(), "the new key verifies after the grace");
        assert!(ring.retired(Some(base.kid()), at(NOW + 70)) && !ring.retired(Some(rotated.kid()), at(NOW + 70)));
        assert!(ring.retired(Some("0000000000000000"), at(NOW)), "a key the ring does not hold");
        // A token without a kid (an earlier build's) is the base key's; one naming an unknown key is refused.
        let legacy = {
            let claims = Claims {
                sub: "bot".into(),
                role: Role::Viewer,
                iat: NOW,
                exp: NOW + 600,
                iss: ISSUER.into(),
                nbf: None,
                ver: 0,
                kid: None,
            };
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &base.encoding).unwrap()
        };
        assert!(ring.verify(&legacy, at(NOW + 1)).is_ok());
        assert!(ring.verify(&legacy, at(NOW + 70)).is_err(), "and retires with it");
        let stranger = TokenKeys::new(b"a key this store never held at all!!", "HS256").unwrap();
        let e = ring.verify(&stranger.issue("bot", Role::Viewer, NOW, 60).unwrap(), at(NOW)).unwrap_err();
        assert!(matches!(&e, AuthError::Invalid(m) if m.contains("is not one of this store's")), "{e:?}");
        // The CSRF token of a session follows the key that signed it.
        assert!(ring.csrf_matches(&new, &ring.csrf_token(&new)));
        assert!(!ring.csrf_matches(&new, &base.csrf_token(&new)));
    }

    #[test]
    fn a_remembered_token_still_expires_and_retires_and_a_forged_one_is_never_remembered() {
        use cfgledger_events::Timestamp;
        let at = |secs: u64| Timestamp::from_micros(i64::try_from(secs).unwrap() * 1_000_000);
        let base = keys();
        let mut ring = KeyRing::new(base.clone(), Some(at(NOW + 70).as_micros()));
        ring.add(base.sibling(b"a rotated key that is long enough, 0001"), None, 7);
        let token = base.issue("alice", Role::Viewer, NOW, 30).unwrap();
        let id = blake3::hash(token.as_bytes());
        let first = ring.verify_known(&token, &id, at(NOW)).unwrap();
        assert_eq!(ring.verify_known(&token, &id, at(NOW + 1)).unwrap(), first, "the same claims, remembered");
        assert_eq!(ring.verified.0.read().unwrap().len(), 1);
        assert_eq!(ring.verify_known(&token, &id, at(NOW + 31)), Err(AuthError::Expired), "expiry is checked again");
        let long = base.issue("alice", Role::Viewer, NOW, 3600).unwrap();
        let long_id = blake3::hash(long.as_bytes());
        assert!(ring.verify_known(&long, &long_id, at(NOW)).is_ok());
        let retired = ring.verify_known(&long, &long_id, at(NOW + 70)).unwrap_err();
        assert!(matches!(&retired, AuthError::Invalid(m) if m.contains("retired by a key rotation")), "{retired:?}");
        // A token whose signature does not match is refused every time and never held.
        let mut forged = token.clone().into_bytes();
        let at_sig = forged.len() - 5;
        forged[at_sig] = if forged[at_sig] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        let forged_id = blake3::hash(forged.as_bytes());
        for _ in 0..2 {
            assert!(ring.verify_known(&forged, &forged_id, at(NOW)).is_err());
        }
        assert!(!ring.verified.0.read().unwrap().contains_key(forged_id.as_bytes()));
        assert!(ring.clone().verified.0.read().unwrap().is_empty(), "a clone starts empty");
    }

    #[test]
    fn a_token_stands_only_while_its_subject_keeps_the_credentials_it_was_issued_with() {
        use cfgledger_events::decide::Sealer;
        use cfgledger_events::{Actor, Batch, Cause, Command, Event, Head};
        struct Clear;
        impl Sealer for Clear {
            fn seal(&self, _: &str, plaintext: &[u8]) -> Result<String, String> {
                Ok(String::from_utf8_lossy(plaintext).into_owned())
            }
            fn open(&self, _: &str, sealed: &str) -> Result<Vec<u8>, String> {
                Ok(sealed.as_bytes().to_vec())
            }
        }
        let catalog = cfgledger_events::builtin::builtin();
        let mut state = cfgledger_projections::SettingsState::new();
        let mut head = Head::EMPTY;
        let mut run = |state: &mut cfgledger_projections::SettingsState, cmd: Command| {
            let events: Vec<Event> = cfgledger_events::decide(&catalog, &*state, &Clear, cmd).unwrap();
            let batch = Batch { id: "b".into(), cause: Cause::Cli { command: "test".into() }, reason: None };
            let at = cfgledger_events::Timestamp::from_micros(0);
            for (env, rec) in cfgledger_events::build_batch(head, at, &Actor::system(), &batch, events) {
                state.apply(&env);
                head = Head { seq: rec.seq, hash: rec.hash };
            }
        };
        run(
            &mut state,
            Command::CreateStore {
                store_id: "s".into(),
                encryption: cfgledger_events::event::EncryptionInfo {
                    algorithm: "xchacha20poly1305".into(),
                    kdf: "argon2id".into(),
                    salt: "00".into(),
                    key_id: "00".into(),
                },
                env_file: String::new(),
                entries: Vec::new(),
            },
        );
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_string();
        run(&mut state, Command::AddUser { name: "alice".into(), role: "viewer".into(), password_hash: hash.clone() });
        let k = keys();
        let claims = |token: &str| k.verify(token, NOW).unwrap();
        let ver = credential_version(&state, "alice");
        assert!(ver > 0);
        let token = k.issue_versioned("alice", Role::Viewer, ver, NOW, 600).unwrap();
        assert_eq!(check_standing(&claims(&token), &state), Ok(()));
        let machine = k.issue("deploy-bot", Role::Auditor, NOW, 600).unwrap();
        assert_eq!(check_standing(&claims(&machine), &state), Ok(()), "a subject that is no user");
        let unversioned = k.issue("alice", Role::Viewer, NOW, 600).unwrap();
        assert!(matches!(check_standing(&claims(&unversioned), &state), Err(AuthError::Revoked(_))));
        let ahead = k.issue_versioned("alice", Role::Viewer, ver + 5, NOW, 600).unwrap();
        assert_eq!(check_standing(&claims(&ahead), &state), Err(AuthError::Ahead(ver + 5)));
        let wrong_role = k.issue_versioned("alice", Role::PlatformAdmin, ver, NOW, 600).unwrap();
        assert!(
            matches!(check_standing(&claims(&wrong_role), &state), Err(AuthError::Revoked(m)) if m.contains("role"))
        );

        run(&mut state, Command::ChangePassword { name: "alice".into(), password_hash: hash.clone() });
        let e = check_standing(&claims(&token), &state).unwrap_err();
        assert!(matches!(&e, AuthError::Revoked(m) if m.contains("password or role of user alice changed")), "{e:?}");
        let after_password = credential_version(&state, "alice");
        let token = k.issue_versioned("alice", Role::Viewer, after_password, NOW, 600).unwrap();
        assert_eq!(check_standing(&claims(&token), &state), Ok(()));

        run(&mut state, Command::ChangeRole { name: "alice".into(), role: "auditor".into() });
        assert!(matches!(check_standing(&claims(&token), &state), Err(AuthError::Revoked(_))), "the old role");
        let token = k.issue_versioned("alice", Role::Auditor, credential_version(&state, "alice"), NOW, 600).unwrap();
        assert_eq!(check_standing(&claims(&token), &state), Ok(()));

        run(&mut state, Command::RemoveUser { name: "alice".into() });
        let e = check_standing(&claims(&token), &state).unwrap_err();
        assert!(matches!(&e, AuthError::Revoked(m) if m.contains("user alice was removed")), "{e:?}");
        // Added again under the same name: the old token does not come back.
        run(&mut state, Command::AddUser { name: "alice".into(), role: "auditor".into(), password_hash: hash });
        assert!(check_standing(&claims(&token), &state).is_err());
    }

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::PlatformAdmin.allows(Role::Auditor));
        assert!(Role::Auditor.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Auditor));
        assert!(!Role::Auditor.allows(Role::PlatformAdmin));
        assert_eq!("auditor".parse::<Role>(), Ok(Role::Auditor));
        assert!("root".parse::<Role>().unwrap_err().contains("platform_admin, auditor, viewer"));
    }

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "wrong horse"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert!(!verify_password(decoy_hash(), ""));
    }
}

/// Tokens ended early (a web UI logout) in this process, kept until they would have expired: the logout's
/// instance refuses the token at once, even if the store cannot record it. Every instance learns of it from the
/// log (`TokenRevoked`, the projection's `token_revoked`).
#[derive(Debug, Default)]
pub struct Revoked {
    tokens: std::sync::Mutex<std::collections::HashMap<blake3::Hash, u64>>,
}

impl Revoked {
    /// Ends `token`, which would expire at `exp`; forgets the tokens already expired at `now`.
    pub fn revoke(&self, token: &str, exp: u64, now: u64) {
        let mut tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens.retain(|_, until| *until >= now);
        tokens.insert(blake3::hash(token.as_bytes()), exp);
    }

    pub fn contains(&self, token: &str) -> bool {
        self.contains_id(&blake3::hash(token.as_bytes()))
    }

    /// Whether the token whose blake3 hash is `id` was ended.
    pub fn contains_id(&self, id: &blake3::Hash) -> bool {
        let tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens.contains_key(id)
    }
}

/// A verified token as a request holds it: its claims, and its blake3 hash (what a logout records, so that a
/// stream opened with it can tell it ended without keeping the token itself).
#[derive(Debug, Clone)]
pub struct Presented {
    pub claims: Claims,
    pub id: blake3::Hash,
}

impl Presented {
    pub fn new(token: &str, claims: Claims) -> Presented {
        Presented { claims, id: blake3::hash(token.as_bytes()) }
    }
}
