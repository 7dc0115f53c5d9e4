//! The use cases: one function per operation, taking typed input (and a [`crate::WriteContext`] for writes)
//! and returning a typed report from [`crate::model`]. The REST handlers, the CLI's local mode and the web UI
//! are thin callers of these; none of them re-assembles the steps of an operation (parse, plan, dry run,
//! cause, execute, report). The functions are `async` so the server awaits them directly; the CLI runs them
//! on a small runtime ([`block_on`]). Blocking store reads and CPU-heavy work run on `spawn_blocking`.

pub mod access;
pub mod clone;
pub mod governance;
pub mod keys;
pub mod registry;
pub mod render;
pub mod rollout;
pub mod seed;
pub mod settings;
pub mod settings_transfer;
pub mod timetravel;
pub mod verify;

use crate::error::Error;

/// Runs `f` (a blocking store read, a key derivation) off the async workers.
pub async fn blocking<T: Send + 'static, E: From<Error> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    tokio::task::spawn_blocking(f).await.map_err(|_| E::from(Error::Closed))?
}

/// Runs a use case to completion from synchronous code (the CLI's local mode) on a current-thread runtime.
pub fn block_on<T>(future: impl std::future::Future<Output = Result<T, Error>>) -> Result<T, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?
        .block_on(future)
}
