//! A throwaway database on the local PostgreSQL server for one bench measurement, shared by
//! `benches/propagation.rs` and `benches/pg_append.rs`: `CREATE DATABASE cfgl_bench_<random>` on
//! `postgres://postgres@127.0.0.1:5432` (trust auth; `CFGLEDGER_BENCH_PG_URL` names another server, as a
//! URL without a database), dropped with `WITH (FORCE)` when the guard goes, so a failed run leaves nothing.
//! The `postgres` client is synchronous and runs its own runtime: call this outside any tokio runtime.

use postgres::{Client, NoTls};

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// The server URL, without a database and without a trailing slash.
pub fn server_url() -> String {
    std::env::var("CFGLEDGER_BENCH_PG_URL").unwrap_or_else(|_| DEFAULT_SERVER.to_string()).trim_end_matches('/').into()
}

fn admin(server: &str) -> Result<Client, String> {
    Client::connect(&format!("{server}/postgres?connect_timeout=3"), NoTls)
        .map_err(|e| format!("cannot connect to PostgreSQL at {server}: {e}"))
}

/// One setting of the server as `SHOW` prints it (`synchronous_commit`, `server_version`, …).
pub fn show(setting: &str) -> Result<String, String> {
    let server = server_url();
    let mut client = admin(&server)?;
    let row = client.query_one(&format!("SHOW {setting}"), &[]).map_err(|e| format!("SHOW {setting}: {e}"))?;
    Ok(row.get(0))
}

/// A database that exists for as long as this value does.
pub struct FreshDb {
    server: String,
    name: String,
}

impl FreshDb {
    pub fn create() -> Result<FreshDb, String> {
        let server = server_url();
        let name = format!("cfgl_bench_{:016x}", rand::random::<u64>());
        let mut client = admin(&server)?;
        client.batch_execute(&format!("CREATE DATABASE {name}")).map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        Ok(FreshDb { server, name })
    }

    /// The URL of this database, for `--db` and `StoreUrl::Postgres`.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        // FORCE ends the connections a server or ledger may still hold (PostgreSQL 13 and later).
        let dropped = admin(&self.server).and_then(|mut c| {
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .map_err(|e| format!("DROP DATABASE {}: {e}", self.name))
        });
        if let Err(e) = dropped {
            eprintln!("warning: the bench database {} was not dropped: {e}", self.name);
        }
    }
}
