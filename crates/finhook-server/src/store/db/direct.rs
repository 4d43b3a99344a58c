//! SQLite without a hop per statement: the group commit's batch runs on the writer
//! connection's own handle, on the thread that builds it.
//!
//! sqlx runs every SQLite statement on a thread of its own: each query is a message to that
//! thread and a wake-up back, two context switches that, with both cores busy, cost more
//! than the statement (docs/BENCHMARKS.md, "The group-commit loop, measured"). The group
//! commit sends a dozen such hops per batch and waits on each. sqlx lets a caller take the
//! handle out of its thread for a while (`SqliteConnection::lock_handle`); here rusqlite
//! wraps that handle, without owning it, so the whole batch runs as plain function calls,
//! then the handle goes back. It is the same connection (the one writer, its pragmas, its
//! transaction state), so nothing else about the store changes. rusqlite, not hand-written
//! FFI: it already prepares, caches, binds and steps statements soundly; only taking a
//! handle it does not own needs `unsafe`, once, below.

use std::marker::PhantomData;
use std::sync::Arc;

use rusqlite::types::Value;
use sqlx::sqlite::LockedSqliteHandle;

use super::{Arg, Sql};
use crate::store::rows::Cols;
use crate::store::sql::payload_log::PayloadLog;

/// The writer's handle, taken from sqlx's thread for as long as this lives.
#[derive(Debug)]
pub(crate) struct Direct<'h> {
    connection: DirectConnection,
    /// The handle stays locked out of sqlx's thread while `'h` lasts.
    _locked: PhantomData<&'h mut ()>,
}

impl std::ops::Deref for Direct<'_> {
    type Target = DirectConnection;
    fn deref(&self) -> &DirectConnection {
        &self.connection
    }
}

impl std::ops::DerefMut for Direct<'_> {
    fn deref_mut(&mut self) -> &mut DirectConnection {
        &mut self.connection
    }
}

/// What runs the store's [`Sql`] on the handle a [`Direct`] holds, with the payload log
/// the writer appends callback bodies to (a store in a file has one).
pub(crate) struct DirectConnection(rusqlite::Connection, Option<Arc<PayloadLog>>);

impl std::fmt::Debug for DirectConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectConnection(the SQLite writer's handle)")
    }
}

impl<'h> Direct<'h> {
    /// Wraps the handle `locked` holds for the length of the borrow.
    pub(crate) fn new(
        locked: &'h mut LockedSqliteHandle<'_>,
        log: Option<Arc<PayloadLog>>,
    ) -> Result<Self, sqlx::Error> {
        let handle = locked.as_raw_handle().as_ptr();
        // SAFETY: `handle` is a live `sqlite3*` that sqlx's worker thread leaves alone while
        // `locked` is held, and `locked` is borrowed for as long as this `Direct` lives, so
        // no other thread touches the handle meanwhile. `from_handle` does not take
        // ownership: dropping the connection finalizes only the statements it prepared and
        // never closes the database, which stays sqlx's.
        #[allow(unsafe_code)]
        let connection = unsafe { rusqlite::Connection::from_handle(handle) }.map_err(error)?;
        // A batch over many endpoints and instances runs a few dozen distinct statements;
        // each is prepared once per batch, not once per write.
        connection.set_prepared_statement_cache_capacity(64);
        Ok(Self { connection: DirectConnection(connection, log), _locked: PhantomData })
    }
}

impl DirectConnection {
    /// The payload log this writer appends to, if the store has one.
    pub(crate) fn payload_log(&self) -> Option<&PayloadLog> {
        self.1.as_deref()
    }

    /// Runs a statement; how many rows it changed. Rows it returns are read and dropped.
    pub(crate) fn execute(&mut self, query: &Sql) -> Result<u64, sqlx::Error> {
        let mut statement = self.prepare(query)?;
        let mut rows = statement.raw_query();
        while rows.next().map_err(error)?.is_some() {}
        drop(rows);
        Ok(self.0.changes())
    }

    /// Runs fixed SQL with no arguments (transaction control).
    pub(crate) fn raw(&mut self, statement: &str) -> Result<(), sqlx::Error> {
        self.0.execute_batch(statement).map_err(error)
    }

    /// Every row `query` returns.
    pub(crate) fn fetch_all(&mut self, query: &Sql) -> Result<Vec<DirectRow>, sqlx::Error> {
        self.fetch(query, usize::MAX)
    }

    /// The first row `query` returns, if any; the rest are not read.
    pub(crate) fn fetch_optional(&mut self, query: &Sql) -> Result<Option<DirectRow>, sqlx::Error> {
        Ok(self.fetch(query, 1)?.pop())
    }

    /// The first `most` rows `query` returns.
    fn fetch(&mut self, query: &Sql, most: usize) -> Result<Vec<DirectRow>, sqlx::Error> {
        let mut statement = self.prepare(query)?;
        let names: Arc<[String]> = statement.column_names().into_iter().map(str::to_string).collect();
        let mut rows = statement.raw_query();
        let mut fetched = Vec::new();
        while fetched.len() < most {
            let Some(row) = rows.next().map_err(error)? else { break };
            let values = (0..names.len()).map(|n| row.get::<_, Value>(n)).collect::<Result<_, _>>().map_err(error)?;
            fetched.push(DirectRow { names: names.clone(), values });
        }
        Ok(fetched)
    }

    /// The statement of `query` (prepared once per text while this lives), its arguments
    /// bound. SQLite numbers `$N` parameters by first appearance, so each is bound by its
    /// name, as sqlx does.
    fn prepare(&self, query: &Sql) -> Result<rusqlite::CachedStatement<'_>, sqlx::Error> {
        let mut statement = self.0.prepare_cached(&query.text).map_err(error)?;
        for index in 1..=statement.parameter_count() {
            let number = statement
                .parameter_name(index)
                .and_then(|name| name.trim_start_matches(['$', '?']).parse::<usize>().ok())
                .unwrap_or(index);
            let arg = query.args.get(number.wrapping_sub(1)).ok_or_else(|| {
                sqlx::Error::Protocol(format!("the query has no argument for its parameter ${number}"))
            })?;
            let bound = match arg {
                Arg::Int(value) => statement.raw_bind_parameter(index, value),
                Arg::Text(value) => statement.raw_bind_parameter(index, value.as_deref()),
                Arg::Bytes(value) => statement.raw_bind_parameter(index, value.as_ref()),
                Arg::Bool(value) => statement.raw_bind_parameter(index, value),
                Arg::Array(_) => {
                    return Err(sqlx::Error::Protocol("an array argument was bound for SQLite, which has none".into()))
                }
            };
            bound.map_err(error)?;
        }
        Ok(statement)
    }
}

/// A row read through [`Direct`]: its values, owned.
#[derive(Debug)]
pub(crate) struct DirectRow {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl DirectRow {
    fn value(&self, column: &str) -> Result<&Value, sqlx::Error> {
        let at = self.names.iter().position(|name| name == column);
        at.and_then(|at| self.values.get(at)).ok_or_else(|| sqlx::Error::ColumnNotFound(column.to_string()))
    }

    fn mismatch(column: &str, wanted: &str, found: &Value) -> sqlx::Error {
        let found = match found {
            Value::Null => "NULL",
            Value::Integer(_) => "INTEGER",
            Value::Real(_) => "REAL",
            Value::Text(_) => "TEXT",
            Value::Blob(_) => "BLOB",
        };
        sqlx::Error::ColumnDecode {
            index: column.to_string(),
            source: format!("expected {wanted}, found {found}").into(),
        }
    }
}

impl Cols for DirectRow {
    fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
        match self.value(column)? {
            Value::Integer(value) => Ok(*value),
            other => Err(Self::mismatch(column, "INTEGER", other)),
        }
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        match self.value(column)? {
            Value::Null => Ok(None),
            _ => self.int(column).map(Some),
        }
    }
    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        match self.value(column)? {
            Value::Text(value) => Ok(value.clone()),
            other => Err(Self::mismatch(column, "TEXT", other)),
        }
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        match self.value(column)? {
            Value::Null => Ok(None),
            _ => self.text(column).map(Some),
        }
    }
    fn flag(&self, column: &str) -> Result<bool, sqlx::Error> {
        self.int(column).map(|value| value != 0)
    }
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
        match self.value(column)? {
            Value::Blob(value) => Ok(value.clone()),
            Value::Text(value) => Ok(value.clone().into_bytes()),
            other => Err(Self::mismatch(column, "BLOB", other)),
        }
    }
}

/// A rusqlite error as the store's callers classify sqlx's (`store::error::classify_sqlx`
/// reads SQLite's result code from `DatabaseError::code`).
fn error(error: rusqlite::Error) -> sqlx::Error {
    match error {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let message = message.unwrap_or_else(|| failure.to_string());
            sqlx::Error::Database(Box::new(DirectError { code: failure.extended_code, message }))
        }
        other => sqlx::Error::Protocol(format!("SQLite: {other}")),
    }
}

/// An error SQLite returned through [`Direct`].
#[derive(Debug, thiserror::Error)]
#[error("(code: {code}) {message}")]
struct DirectError {
    code: i32,
    message: String,
}

impl sqlx::error::DatabaseError for DirectError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        match self.code {
            2067 | 1555 => sqlx::error::ErrorKind::UniqueViolation, // CONSTRAINT_UNIQUE, CONSTRAINT_PRIMARYKEY
            787 => sqlx::error::ErrorKind::ForeignKeyViolation,     // CONSTRAINT_FOREIGNKEY
            1299 => sqlx::error::ErrorKind::NotNullViolation,       // CONSTRAINT_NOTNULL
            275 => sqlx::error::ErrorKind::CheckViolation,          // CONSTRAINT_CHECK
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;
    use crate::store::db::sql;
    use crate::store::error::{classify_sqlx, FailureKind};

    #[tokio::test]
    async fn statements_on_the_handle_bind_by_number_read_back_and_fail_as_sqlx_would() {
        let mut sqlite = sqlx::SqliteConnection::connect("sqlite::memory:").await.expect("in-memory database");
        let mut locked = sqlite.lock_handle().await.expect("the handle");
        let mut direct = Direct::new(&mut locked, None).expect("wrapped");
        direct
            .raw("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, body BLOB, on_ INTEGER)")
            .expect("table");

        // `$2` before `$1`: bound by number, not by order of appearance.
        let insert = sql("INSERT INTO t (name, id, body, on_) VALUES ($2, $1, $3, $4)")
            .bind(7_i64)
            .bind("seven")
            .bind(bytes::Bytes::from_static(b"\x00\x01"))
            .bind(true);
        assert_eq!(direct.execute(&insert).expect("inserted"), 1);
        let rows = direct
            .fetch_all(&sql("SELECT id, name, body, on_, NULL AS none FROM t WHERE id = $1").bind(7_i64))
            .expect("read");
        let [row] = rows.as_slice() else { panic!("one row, got {}", rows.len()) };
        assert_eq!(row.int("id").expect("id"), 7);
        assert_eq!(row.text("name").expect("name"), "seven");
        assert_eq!(row.bytes("body").expect("body"), b"\x00\x01");
        assert!(row.flag("on_").expect("flag"));
        assert_eq!(row.opt_text("none").expect("null"), None);
        assert!(matches!(row.int("name"), Err(sqlx::Error::ColumnDecode { .. })), "TEXT is not an INTEGER");
        assert!(matches!(row.int("missing"), Err(sqlx::Error::ColumnNotFound(_))));

        // SQLite's own error, with its extended code, as sqlx would report it.
        let again = direct.execute(&insert.clone()).expect_err("the same id twice");
        let sqlx::Error::Database(db) = &again else { panic!("a database error, got {again:?}") };
        assert_eq!(db.code().as_deref(), Some("1555"), "SQLITE_CONSTRAINT_PRIMARYKEY: {db}");
        assert_eq!(db.kind(), sqlx::error::ErrorKind::UniqueViolation);
        assert_eq!(classify_sqlx(&again), FailureKind::Internal);

        let unbound = direct.execute(&sql("INSERT INTO t (id, name) VALUES ($1, $2)").bind(8_i64));
        assert!(matches!(unbound, Err(sqlx::Error::Protocol(_))), "a parameter with no argument: {unbound:?}");
        let written = direct.fetch_all(&sql("SELECT count(*) AS n FROM t")).expect("count");
        assert_eq!(written[0].int("n").expect("n"), 1, "neither failed statement wrote a row");
    }
}
