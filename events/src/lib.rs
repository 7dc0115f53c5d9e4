//! cfgledger's pure core: the event enum and its envelope, canonical encoding, the blake3 hash chain,
//! the settings catalog, and `decide`, which validates a command against the current state and turns it
//! into events. Nothing here does IO, reads a clock or draws randomness: time, actors, identifiers and
//! encryption arrive as data or as an injected [`decide::Sealer`].

pub mod builtin;
pub mod catalog;
pub mod chain;
pub mod decide;
pub mod envelope;
pub mod event;
pub mod governance;
pub mod hash;
pub mod master_key;
pub mod namespace;
pub mod registry_import;
pub mod resource;
pub mod rollback;
pub mod rollout;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;
pub mod time;
pub mod value;

pub use catalog::{Catalog, Category, Namespace, Reload, SettingSpec, ValueType};
pub use chain::{
    build_batch, check_follows, verify_link, verify_record, verify_record_event, ChainError, Head, Link, Record,
    RecordRef, VerifiedEvent,
};
pub use decide::{
    decide, plan_import, Command, ImportRequest, PlanAction, PlanEntry, Rejection, RejectionKind, Sealer,
    SettingsLookup, ROLES,
};
pub use envelope::{Actor, Batch, Cause, DecodeError, Envelope, EnvelopeRef, EventAt, Source};
pub use event::{Event, SeededValue, StoredValue};
pub use hash::Hash;
pub use resource::ResourceKind;
pub use time::Timestamp;
pub use value::{Input, ValueError};

/// The store format written into the genesis event; bumped only by an incompatible change of the log.
pub const STORE_FORMAT: &str = "cfgledger/2";

/// The store format of logs written before namespaces: their setting keys are bare (see [`namespace`]).
pub const LEGACY_STORE_FORMAT: &str = "cfgledger/1";
