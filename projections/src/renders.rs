//! What the audit trail already says of renders with secrets. A render of a namespace with its secrets is
//! recorded (`SecretsRendered`: who, which namespace, format and keys, never a value) so that every
//! disclosure is on the trail. A fleet of agents sharing one token renders again after every change, each
//! instance once: the first render records that this subject received those keys as of that state, and
//! the others, made before anything else was appended, would record the same thing again. The fold keeps,
//! per actor and namespace, the last such record, and the seq of the last event of any other kind (the
//! only place where what a render gives can change), so that `usecase::render` records a render only
//! when the trail does not already say it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One actor's last recorded render of one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderMark {
    pub seq: u64,
    pub format: String,
    /// The qualified keys whose plaintext it gave, as recorded.
    pub keys: Vec<String>,
}

/// The last recorded render with secrets of each actor and namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRenders {
    /// By actor, then namespace.
    last: BTreeMap<String, BTreeMap<String, RenderMark>>,
}

impl SecretRenders {
    /// Folds a `SecretsRendered` record at `seq` by `actor`.
    pub(crate) fn record(&mut self, actor: &str, namespace: &str, mark: RenderMark) {
        let by_namespace = match self.last.get_mut(actor) {
            Some(m) => m,
            None => self.last.entry(actor.to_string()).or_default(),
        };
        match by_namespace.get_mut(namespace) {
            Some(last) => *last = mark,
            None => {
                by_namespace.insert(namespace.to_string(), mark);
            }
        }
    }

    /// `actor`'s last recorded render of `namespace`, if any.
    pub fn last(&self, actor: &str, namespace: &str) -> Option<&RenderMark> {
        self.last.get(actor).and_then(|m| m.get(namespace))
    }
}
