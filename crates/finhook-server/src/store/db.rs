//! How a query runs on either database: the one place where SQLite and PostgreSQL differ
//! in execution rather than in SQL.
//!
//! Every query of the store is written once, in the SQL both databases accept (`$N`
//! placeholders, which sqlx's SQLite driver takes too; `TRUE`/`FALSE`; `CASE` for the
//! two-argument `min`/`max` that only SQLite has), as a [`Sql`]: text plus [`Arg`]s. Running
//! it on a [`Conn`] or on the [`Pools`] binds each argument with the native driver and
//! wraps the native row in [`Row`], which the shared row mapping reads through `Cols`.
//!
//! Why this and not sqlx's `Any` driver or a generic over `sqlx::Database`: `Any` converts
//! every row into its own value type (a second copy of each payload) and is strict about
//! types that SQLite stores loosely (a `bool` read from an `INTEGER` column fails), and it
//! hides the native connection the group commit needs. A generic over `sqlx::Database`
//! needs higher-ranked bounds (`for<'c> &'c mut DB::Connection: Executor<'c>`, `Encode`
//! and `Type` for every bound type) on every function. The cost here is one small `Vec`
//! of arguments per query and a `match` per column read, both far below a round trip.

use std::borrow::Cow;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};

use super::rows::Cols;
use super::sql::payload_log::PayloadLog;
use super::StoreError;

mod direct;
pub(crate) use direct::{Direct, DirectConnection};

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file, owned by one process (the lock file proves it).
    Sqlite,
    /// A PostgreSQL database shared by any number of nodes.
    Postgres,
}

/// One bound value. The store binds only these kinds, in either database.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
    /// A blob: shared, so a query that is cloned or retried does not copy it.
    Bytes(bytes::Bytes),
    Bool(bool),
    /// A whole column of a set-based write, as one PostgreSQL array (see
    /// `store::sql::sets`); SQLite has no arrays, and binding one there is an error.
    Array(Column),
}

/// The values of one column, for every row of a set-based write.
#[derive(Debug, Clone)]
pub(crate) enum Column {
    Ints(Vec<Option<i64>>),
    Texts(Vec<Option<String>>),
    Blobs(Vec<bytes::Bytes>),
    Bools(Vec<bool>),
}

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Arg::Int(Some(value))
    }
}

impl From<Option<i64>> for Arg {
    fn from(value: Option<i64>) -> Self {
        Arg::Int(value)
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Arg::Text(Some(value.to_string()))
    }
}

impl From<String> for Arg {
    fn from(value: String) -> Self {
        Arg::Text(Some(value))
    }
}

impl From<&String> for Arg {
    fn from(value: &String) -> Self {
        Arg::Text(Some(value.clone()))
    }
}

impl From<Option<String>> for Arg {
    fn from(value: Option<String>) -> Self {
        Arg::Text(value)
    }
}

impl From<&Option<String>> for Arg {
    fn from(value: &Option<String>) -> Self {
        Arg::Text(value.clone())
    }
}

impl From<Option<&str>> for Arg {
    fn from(value: Option<&str>) -> Self {
        Arg::Text(value.map(str::to_string))
    }
}

impl From<Vec<u8>> for Arg {
    fn from(value: Vec<u8>) -> Self {
        Arg::Bytes(value.into())
    }
}

impl From<bytes::Bytes> for Arg {
    fn from(value: bytes::Bytes) -> Self {
        Arg::Bytes(value)
    }
}

impl From<bool> for Arg {
    fn from(value: bool) -> Self {
        Arg::Bool(value)
    }
}

/// A query: its text, in the SQL both databases accept, and its arguments.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    text: Cow<'static, str>,
    args: Vec<Arg>,
}

/// Starts a query; `.bind(...)` its `$1`, `$2`, ... in order.
pub(crate) fn sql(text: impl Into<Cow<'static, str>>) -> Sql {
    Sql { text: text.into(), args: Vec::new() }
}

/// `$first, $first+1, ...` for `count` arguments: an `IN (...)` list, bound with
/// [`Sql::bind_each`].
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

impl Sql {
    pub(crate) fn bind(mut self, arg: impl Into<Arg>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Binds each of `args` in turn: the values of an `IN (...)` list.
    pub(crate) fn bind_each<A: Into<Arg>>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The same query under `EXPLAIN QUERY PLAN` (SQLite), to test what the planner does.
    #[cfg(test)]
    pub(crate) fn explained(mut self) -> Self {
        self.text = Cow::Owned(format!("EXPLAIN QUERY PLAN {}", self.text));
        self
    }

    /// The same query under `EXPLAIN` (PostgreSQL's plan, without running it).
    #[cfg(test)]
    pub(crate) fn explained_on_postgres(mut self) -> Self {
        self.text = Cow::Owned(format!("EXPLAIN {}", self.text));
        self
    }

    /// `statements` as one multi-statement query, for SQLite: each statement's `$N` is
    /// renumbered past the arguments of those before it. (The store's SQL never has a `$`
    /// inside a string literal, so every `$` followed by digits is a placeholder.)
    fn joined(statements: Vec<Sql>) -> Sql {
        let mut joined = Sql { text: Cow::Owned(String::new()), args: Vec::new() };
        for statement in statements {
            let text = joined.text.to_mut();
            if !text.is_empty() {
                text.push_str(";\n");
            }
            push_renumbered(text, &statement.text, joined.args.len());
            joined.args.extend(statement.args);
        }
        joined
    }

    /// The query for SQLite; an error, never a wrong binding, if it holds an array.
    fn sqlite(&self) -> Result<sqlx::query::Query<'_, Sqlite, SqliteArguments<'_>>, sqlx::Error> {
        Ok(bind_all!(sqlx::query(&self.text), &self.args, |_query, _column| {
            return Err(sqlx::Error::Protocol("an array argument was bound for SQLite, which has none".into()));
        }))
    }

    fn postgres(&self) -> sqlx::query::Query<'_, Postgres, PgArguments> {
        bind_all!(sqlx::query(&self.text), &self.args, |query, column| match column {
            Column::Ints(values) => query.bind(values.as_slice()),
            Column::Texts(values) => query.bind(values.as_slice()),
            Column::Blobs(values) => query.bind(values.iter().map(AsRef::as_ref).collect::<Vec<&[u8]>>()),
            Column::Bools(values) => query.bind(values.as_slice()),
        })
    }
}

/// Binds every argument to a native query; a macro because the two drivers' `bind` have
/// different bounds that no common trait names. `|query, column| …` binds a whole column
/// (an [`Arg::Array`]), or refuses to.
macro_rules! bind_all {
    ($query:expr, $args:expr, |$bound:tt, $column:tt| $array:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Int(value) => query.bind(*value),
                Arg::Text(value) => query.bind(value.as_deref()),
                Arg::Bytes(value) => query.bind(value.as_ref()),
                Arg::Bool(value) => query.bind(*value),
                Arg::Array(column) => {
                    let ($bound, $column) = (query, column);
                    $array
                }
            };
        }
        query
    }};
}
use bind_all;

/// Appends `text` to `out` with every placeholder `$N` written as `$(N + offset)`.
fn push_renumbered(out: &mut String, text: &str, offset: usize) {
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..=dollar]);
        rest = &rest[dollar + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(number) = rest[..digits].parse::<usize>() {
            out.push_str(&(number + offset).to_string());
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
}

/// A row of either database.
#[allow(missing_debug_implementations)] // sqlx's SQLite rows have no `Debug`.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
    /// Read on the SQLite writer's own handle ([`Direct`]).
    Direct(direct::DirectRow),
}

macro_rules! delegate {
    ($self:ident, $column:ident, $method:ident) => {
        match $self {
            Row::Sqlite(row) => row.$method($column),
            Row::Postgres(row) => row.$method($column),
            Row::Direct(row) => row.$method($column),
        }
    };
}

impl Cols for Row {
    fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
        delegate!(self, column, int)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        delegate!(self, column, opt_int)
    }
    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        delegate!(self, column, text)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        delegate!(self, column, opt_text)
    }
    fn flag(&self, column: &str) -> Result<bool, sqlx::Error> {
        delegate!(self, column, flag)
    }
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
        delegate!(self, column, bytes)
    }
}

/// A connection of either database, inside a transaction or not.
#[derive(Debug)]
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
    /// The SQLite writer, its handle taken out of sqlx's thread ([`Direct`]): every
    /// statement runs right here, without a hop; the futures never wait.
    Direct(&'c mut DirectConnection),
}

impl Conn<'_> {
    /// Runs a statement; how many rows it changed.
    pub(crate) async fn execute(&mut self, query: Sql) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Conn::Sqlite(connection) => query.sqlite()?.execute(&mut **connection).await?.rows_affected(),
            Conn::Postgres(connection) => query.postgres().execute(&mut **connection).await?.rows_affected(),
            Conn::Direct(connection) => connection.execute(&query)?,
        })
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(_) | Conn::Direct(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// The payload log callback bodies go to instead of the row: the SQLite writer's, when
    /// the store is a file ([`crate::store::sql::payload_log`]). Elsewhere, `None`: the
    /// body is stored in the row.
    pub(crate) fn payload_log(&self) -> Option<&PayloadLog> {
        match self {
            Conn::Direct(connection) => connection.payload_log(),
            Conn::Sqlite(_) | Conn::Postgres(_) => None,
        }
    }

    /// Makes the bodies appended to the payload log durable: before the `COMMIT` of the
    /// rows that name them.
    pub(crate) fn sync_payloads(&self) -> Result<(), StoreError> {
        match self.payload_log() {
            Some(log) => log.sync().map_err(StoreError::PayloadLog),
            None => Ok(()),
        }
    }

    /// Runs `statements` in order; how many rows they changed in all. SQLite gets them as
    /// one multi-statement query: one round trip to sqlx's connection thread instead of one
    /// per statement, which is most of what the group commit's hot writes cost there.
    /// PostgreSQL's extended protocol takes one statement with arguments at a time; on the
    /// writer's own handle a statement costs no hop, and each stays prepared on its own.
    pub(crate) async fn execute_all(&mut self, statements: Vec<Sql>) -> Result<u64, sqlx::Error> {
        match self {
            Conn::Sqlite(_) => self.execute(Sql::joined(statements)).await,
            Conn::Postgres(_) | Conn::Direct(_) => {
                let mut changed = 0;
                for statement in statements {
                    changed += self.execute(statement).await?;
                }
                Ok(changed)
            }
        }
    }

    /// Runs a fixed statement with no arguments (transaction control) through the simple
    /// query protocol.
    pub(crate) async fn raw(&mut self, statement: &'static str) -> Result<(), sqlx::Error> {
        match self {
            Conn::Sqlite(connection) => {
                sqlx::Executor::execute(&mut **connection, sqlx::raw_sql(statement)).await.map(drop)
            }
            Conn::Postgres(connection) => {
                sqlx::Executor::execute(&mut **connection, sqlx::raw_sql(statement)).await.map(drop)
            }
            Conn::Direct(connection) => connection.raw(statement),
        }
    }

    pub(crate) async fn fetch_all(&mut self, query: Sql) -> Result<Vec<Row>, sqlx::Error> {
        Ok(match self {
            Conn::Sqlite(connection) => {
                query.sqlite()?.fetch_all(&mut **connection).await?.into_iter().map(Row::Sqlite).collect()
            }
            Conn::Postgres(connection) => {
                query.postgres().fetch_all(&mut **connection).await?.into_iter().map(Row::Postgres).collect()
            }
            Conn::Direct(connection) => connection.fetch_all(&query)?.into_iter().map(Row::Direct).collect(),
        })
    }

    pub(crate) async fn fetch_optional(&mut self, query: Sql) -> Result<Option<Row>, sqlx::Error> {
        Ok(match self {
            Conn::Sqlite(connection) => query.sqlite()?.fetch_optional(&mut **connection).await?.map(Row::Sqlite),
            Conn::Postgres(connection) => query.postgres().fetch_optional(&mut **connection).await?.map(Row::Postgres),
            Conn::Direct(connection) => connection.fetch_optional(&query)?.map(Row::Direct),
        })
    }

    pub(crate) async fn fetch_one(&mut self, query: Sql) -> Result<Row, sqlx::Error> {
        self.fetch_optional(query).await?.ok_or(sqlx::Error::RowNotFound)
    }
}

/// The connections of a store.
///
/// SQLite: one writer connection (writers queue in-process instead of failing with
/// `SQLITE_BUSY`) and a few read-only ones that WAL lets run beside it. PostgreSQL: one
/// pool for both.
#[derive(Debug, Clone)]
pub(crate) enum Pools {
    Sqlite { writer: SqlitePool, reader: SqlitePool },
    Postgres(PgPool),
}

/// A read or write connection taken from [`Pools`].
#[derive(Debug)]
pub(crate) enum Pooled {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Pooled {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Pooled::Sqlite(connection) => Conn::Sqlite(connection),
            Pooled::Postgres(connection) => Conn::Postgres(connection),
        }
    }

    /// Closes the connection when it is dropped instead of returning it to the pool: for a
    /// connection whose state is in doubt after an error.
    pub(crate) fn close_on_drop(&mut self) {
        match self {
            Pooled::Sqlite(connection) => connection.close_on_drop(),
            Pooled::Postgres(connection) => connection.close_on_drop(),
        }
    }
}

/// An open transaction; dropped without [`Tx::commit`], it rolls back.
#[derive(Debug)]
pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(tx) => Conn::Sqlite(tx),
            Tx::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }
}

impl Pools {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every connection, waiting for those in use to come back.
    pub(crate) async fn close(&self) {
        match self {
            Pools::Sqlite { writer, reader } => {
                writer.close().await;
                reader.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
        }
    }

    /// A connection for reads (on SQLite, a read-only one beside the writer).
    pub(crate) async fn reader(&self) -> Result<Pooled, sqlx::Error> {
        Ok(match self {
            Pools::Sqlite { reader, .. } => Pooled::Sqlite(reader.acquire().await?),
            Pools::Postgres(pool) => Pooled::Postgres(pool.acquire().await?),
        })
    }

    /// A connection for writes outside [`Pools::begin`] (the group commit runs its own
    /// transaction control): on SQLite the one writer connection, on PostgreSQL one of the
    /// pool's.
    pub(crate) async fn writer(&self) -> Result<Pooled, sqlx::Error> {
        Ok(match self {
            Pools::Sqlite { writer, .. } => Pooled::Sqlite(writer.acquire().await?),
            Pools::Postgres(pool) => Pooled::Postgres(pool.acquire().await?),
        })
    }

    /// A write transaction (on SQLite, on the one writer connection).
    ///
    /// Writes always run in an explicit transaction, never in autocommit: with
    /// `RETURNING`, SQLite hands the row over at the first step and commits only when the
    /// statement is reset, and an error there (a full disk) never reaches sqlx. `COMMIT`
    /// reports it.
    pub(crate) async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Pools::Sqlite { writer, .. } => Tx::Sqlite(writer.begin().await?),
            Pools::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    pub(crate) async fn read_all(&self, query: Sql) -> Result<Vec<Row>, sqlx::Error> {
        self.reader().await?.conn().fetch_all(query).await
    }

    pub(crate) async fn read_optional(&self, query: Sql) -> Result<Option<Row>, sqlx::Error> {
        self.reader().await?.conn().fetch_optional(query).await
    }

    /// Runs one write statement in its own transaction; how many rows it changed.
    pub(crate) async fn write(&self, query: Sql) -> Result<u64, sqlx::Error> {
        let mut tx = self.begin().await?;
        let changed = tx.conn().execute(query).await?;
        tx.commit().await?;
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_statements_number_their_placeholders_after_the_ones_before() {
        let joined = Sql::joined(vec![
            sql("INSERT INTO a (x, y) VALUES ($1, $2)").bind(1_i64).bind("two"),
            sql("UPDATE b SET z = $2 WHERE id = $1 AND w = $10").bind(3_i64).bind(4_i64),
            sql("DELETE FROM c"),
        ]);
        assert_eq!(
            joined.text,
            "INSERT INTO a (x, y) VALUES ($1, $2);\nUPDATE b SET z = $4 WHERE id = $3 AND w = $12;\nDELETE FROM c"
        );
        let ints: Vec<_> = joined.args.iter().map(|arg| matches!(arg, Arg::Int(_))).collect();
        assert_eq!(ints, [true, false, true, true]);
    }
}
