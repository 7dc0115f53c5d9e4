//! Authentication of the admin API: roles, bearer tokens (JWT signed with the store's `JWT_SECRET_KEY`,
//! jsonwebtoken) and password hashes (argon2id, the argon2 crate's PHC strings). The HTTP side, which
//! extracts the principal from a request, is in `api::auth`.

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
}

/// Signs and verifies tokens with one HMAC key.
#[derive(Clone)]
pub struct TokenKeys {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The key of the web UI's CSRF tokens, derived from the signing key, so every instance of a fleet
    /// that shares the signing key accepts the same session's CSRF token.
    csrf: [u8; 32],
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeys").field("algorithm", &self.algorithm).finish_non_exhaustive()
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

    /// A token for `sub` with `role`, valid for `ttl_secs` from `now` (Unix seconds).
    pub fn issue(&self, sub: &str, role: Role, now: u64, ttl_secs: u64) -> Result<String, AuthError> {
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
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .map_err(|e| AuthError::Signing(e.to_string()))
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
        let claims = self.decode(token, &validation)?;
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

/// Tokens ended early (a web UI logout): kept until they would have expired. Per process: another instance
/// of a fleet accepts a logged-out session's cookie until it expires, which the browser no longer sends.
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
        let tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens.contains_key(&blake3::hash(token.as_bytes()))
    }
}
