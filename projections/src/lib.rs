//! Pure folds of the event log into state. `apply` is total and deterministic: validation already
//! happened in `decide`, so every event in the log applies. Nothing here does IO.

pub mod master_keys;
pub mod settings;
pub mod snapshot;
pub mod view;

pub use settings::{Entry, ResourceEntry, SettingsState, SigningKey, SigningKeys, StoreInfo, User};
pub use view::{boot_values, resolve, resolve_key, BootValues, SettingView, ValueSource};
