//! The test suite's catalog (feature `testing`, for this workspace's tests and benchmarks only): the
//! built-in catalog with the default namespace extended by `events/fixtures/suite-catalog.json`, the few keys
//! the store's mechanism tests were written against (`MAX_WORKERS`, a duration `CACHE_TTL`, an unlocked
//! secret `WEBHOOK_SECRET`, ...), and with the gateway's two generated secrets not generated, so that a new
//! store's first seqs are the genesis batch alone. The gateway's own catalog is tested as it is by
//! `builtin`'s tests, the catalog generator test, the namespace tests and the gateway boot test.

use crate::builtin::builtin;
use crate::catalog::{Catalog, CatalogFile};

/// The fixture, as a `--catalog` file would hold it.
pub const SUITE_CATALOG_JSON: &str = include_str!("../fixtures/suite-catalog.json");

/// The path of the fixture, for tests that run the binary (`CFGLEDGER_CATALOG`).
pub const SUITE_CATALOG_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/suite-catalog.json");

/// The built-in catalog extended by the fixture.
#[allow(clippy::expect_used)]
pub fn suite_catalog() -> Catalog {
    let file: CatalogFile = serde_json::from_str(SUITE_CATALOG_JSON).expect("the suite's catalog is a catalog file");
    builtin().with_file(file).expect("the suite's catalog extends the built-in one")
}
