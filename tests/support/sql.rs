//! A stand-in for the `sqlite3` shell in the tests: SQL run on a store's database file through a connection
//! of its own, behind the binary's back (to tamper with the log or its checkpoints, or to read what is
//! stored), with the rows printed the way the shell's default list mode prints them. It goes through
//! `rusqlite` (the crate the store itself uses, with SQLite bundled), so the tests need no program installed.

use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::types::ValueRef;
use std::path::Path;
use std::time::Duration;

/// Runs the statements of `sql` one after the other on the database at `path`, each in its own autocommit
/// transaction as the shell does, waiting up to `busy` for other connections' locks. Returns the rows they
/// produced, one line per row with its columns joined by `|` (NULL prints as nothing). Stops at the first
/// statement that fails; those before it stay done.
pub fn run(path: &Path, busy: Duration, sql: &str) -> rusqlite::Result<String> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(busy)?;
    // Statements are prepared one at a time, each after the previous one ran, so a statement may rely on
    // what an earlier one changed in the schema (`DROP TRIGGER ...; UPDATE ...`).
    let mut statements = rusqlite::Batch::new(&conn, sql);
    let mut out = String::new();
    while let Some(mut statement) = statements.next()? {
        let columns = statement.column_count();
        let mut rows = statement.raw_query();
        while let Some(row) = rows.next()? {
            let cells = (0..columns).map(|i| row.get_ref(i).map(cell)).collect::<rusqlite::Result<Vec<_>>>()?;
            out.push_str(&cells.join("|"));
            out.push('\n');
        }
    }
    Ok(out)
}

/// One value as the shell prints it in list mode: text and blobs as their bytes, numbers in decimal.
fn cell(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => String::new(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => r.to_string(),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => String::from_utf8_lossy(bytes).into_owned(),
    }
}
