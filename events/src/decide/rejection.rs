//! Why a command was refused: the kind of refusal (which the API maps to a status), the message the caller
//! sees, and for an attempt on a locked key the event that records it. The constructors are the one way to
//! build a refusal, in the core and in the service alike.

use crate::event::{ChangeRejected, Event, StoredValue};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// The key is not in the catalog (404).
    UnknownKey,
    /// The value does not fit the key's type or constraints (422).
    Invalid,
    /// The key is locked (403); the attempt is recorded.
    Locked,
    /// The store already exists, or does not exist yet (409).
    State,
    /// A value could not be sealed (500: an infrastructure fault, not the user's).
    Sealing,
    /// The key changed since the version the caller expected (409).
    Conflict,
    /// The thing named does not exist (404).
    Missing,
    /// The caller may not do this (403): approve their own request, use the emergency bypass unlisted.
    Forbidden,
    /// The change needs approvals under the change policy (403): propose it as a change request.
    ApprovalRequired,
}

/// A refused command. `audit` holds the events that record the attempt; the caller appends them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub kind: RejectionKind,
    pub message: String,
    pub audit: Vec<Event>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Rejection {}

impl Rejection {
    /// A refusal that records nothing in the log.
    fn new(kind: RejectionKind, message: impl Into<String>) -> Rejection {
        Rejection { kind, message: message.into(), audit: Vec::new() }
    }

    /// A value or an entity that does not fit (422).
    pub fn invalid(message: impl Into<String>) -> Rejection {
        Rejection::new(RejectionKind::Invalid, message)
    }

    /// A key the catalog does not know (404), named in the message.
    pub fn unknown_key(key: &str) -> Rejection {
        Rejection::new(RejectionKind::UnknownKey, format!("unknown key {}", crate::namespace::display(key)))
    }

    /// An attempt on a locked key (403), with the `ChangeRejected` event that records it. `action` is what
    /// was attempted (`set`, `reset`, `import`); `attempted` the value, sealed when the key is sensitive,
    /// and `None` for a bootstrap key, which is never stored in any form.
    pub fn locked(key: &str, action: &str, bootstrap: bool, attempted: Option<StoredValue>) -> Rejection {
        let shown = crate::namespace::display(key);
        let message = if bootstrap {
            format!("key {shown} is locked: it is read from the process environment only and never stored")
        } else {
            format!("key {shown} is locked: it can only be seeded from the environment")
        };
        let audit = vec![Event::ChangeRejected(ChangeRejected {
            key: key.to_string(),
            action: action.to_string(),
            reason: "locked".to_string(),
            message: message.clone(),
            attempted,
        })];
        Rejection { kind: RejectionKind::Locked, message, audit }
    }

    /// The thing named does not exist (404).
    pub fn missing(message: impl Into<String>) -> Rejection {
        Rejection::new(RejectionKind::Missing, message)
    }

    /// The state moved since the caller looked, or the change collides with what exists (409).
    pub fn conflict(message: impl Into<String>) -> Rejection {
        Rejection::new(RejectionKind::Conflict, message)
    }

    /// The store is in the wrong state for the command: initialized already or not yet, a user that exists (409).
    pub fn state(message: impl Into<String>) -> Rejection {
        Rejection::new(RejectionKind::State, message)
    }

    /// The caller may not do this (403).
    pub fn forbidden(message: impl Into<String>) -> Rejection {
        Rejection::new(RejectionKind::Forbidden, message)
    }

    /// A direct change of something the change policy asks approvals for (403).
    pub fn approval_required(message: impl Into<String>) -> Rejection {
        Rejection::new(RejectionKind::ApprovalRequired, message)
    }

    /// A value could not be sealed (500: an infrastructure fault, not the user's).
    pub fn sealing(message: impl Into<String>) -> Rejection {
        Rejection::new(RejectionKind::Sealing, message)
    }
}
