//! One schema in two dialects: the SQLite and PostgreSQL migrations must produce the same
//! tables, columns (name, type family, nullability), primary keys, indexes, unique and
//! foreign-key constraints and number of CHECK constraints. Read from each database's own
//! catalogue after the real migrations ran.

use std::collections::BTreeMap;

use finhook_core::seal::SealingKey;
use finhook_server::store::sql::SqlStore;
use sqlx::{Connection, Row};

use crate::helpers::*;

/// What a table is made of, in terms both catalogues can state.
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    /// name → (type family, nullable)
    columns: BTreeMap<String, (String, bool)>,
    primary_key: Vec<String>,
    /// (columns, unique, partial), primary keys excluded
    indexes: Vec<(Vec<String>, bool, bool)>,
    /// (column, referenced table, referenced column)
    foreign_keys: Vec<(String, String, String)>,
    checks: usize,
}

/// SQLite's declared types and PostgreSQL's types, by what the store reads them as.
fn family(declared: &str) -> String {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" | "bigserial" | "boolean" => "integer",
        "text" => "text",
        "blob" | "bytea" => "bytes",
        other => other,
    }
    .to_string()
}

async fn sqlite_schema(path: &str) -> BTreeMap<String, Table> {
    let mut db = sqlx::SqliteConnection::connect(path).await.expect("open");
    let tables = sqlx::query(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&mut db)
    .await
    .expect("tables");
    let mut schema = BTreeMap::new();
    for row in tables {
        let name: String = row.get("name");
        let ddl: String = row.get("sql");
        let mut table = Table { checks: ddl.to_ascii_uppercase().matches("CHECK (").count(), ..Table::default() };
        let mut pk = Vec::new();
        for column in sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)")
            .bind(&name)
            .fetch_all(&mut db)
            .await
            .expect("columns")
        {
            let column_name: String = column.get("name");
            let pk_position: i64 = column.get("pk");
            let not_null: bool = column.get::<i64, _>("notnull") != 0 || pk_position > 0;
            if pk_position > 0 {
                pk.push((pk_position, column_name.clone()));
            }
            table.columns.insert(column_name, (family(&column.get::<String, _>("type")), !not_null));
        }
        pk.sort();
        table.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        for index in sqlx::query("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?)")
            .bind(&name)
            .fetch_all(&mut db)
            .await
            .expect("indexes")
        {
            if index.get::<String, _>("origin") == "pk" {
                continue;
            }
            let index_name: String = index.get("name");
            let columns: Vec<String> = sqlx::query("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                .bind(&index_name)
                .fetch_all(&mut db)
                .await
                .expect("index columns")
                .iter()
                .map(|r| r.get("name"))
                .collect();
            table.indexes.push((columns, index.get::<i64, _>("unique") != 0, index.get::<i64, _>("partial") != 0));
        }
        table.indexes.sort();
        for fk in sqlx::query("SELECT \"from\", \"table\", \"to\" FROM pragma_foreign_key_list(?)")
            .bind(&name)
            .fetch_all(&mut db)
            .await
            .expect("foreign keys")
        {
            table.foreign_keys.push((fk.get("from"), fk.get("table"), fk.get("to")));
        }
        table.foreign_keys.sort();
        schema.insert(name, table);
    }
    schema
}

async fn postgres_schema(url: &str) -> BTreeMap<String, Table> {
    let mut db = sqlx::PgConnection::connect(url).await.expect("connect");
    let mut schema: BTreeMap<String, Table> = BTreeMap::new();
    for column in sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS ty, is_nullable = 'YES' AS nullable
         FROM information_schema.columns WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&mut db)
    .await
    .expect("columns")
    {
        let table = schema.entry(column.get("t")).or_default();
        table.columns.insert(column.get("c"), (family(&column.get::<String, _>("ty")), column.get("nullable")));
    }
    // Every index, with whether it backs the primary key.
    for index in sqlx::query(
        "SELECT t.relname::text AS t, i.indisunique AS is_unique, i.indisprimary AS is_primary,
                i.indpred IS NOT NULL AS partial,
                array(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n) AS columns
         FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace ns ON ns.oid = t.relnamespace
         WHERE ns.nspname = 'public' AND t.relname NOT LIKE '_sqlx%'",
    )
    .fetch_all(&mut db)
    .await
    .expect("indexes")
    {
        let table = schema.entry(index.get("t")).or_default();
        let columns: Vec<String> = index.get("columns");
        if index.get("is_primary") {
            table.primary_key = columns;
        } else {
            table.indexes.push((columns, index.get("is_unique"), index.get("partial")));
        }
    }
    for fk in sqlx::query(
        "SELECT c.conrelid::regclass::text AS t, a.attname::text AS col, c.confrelid::regclass::text AS ref_t,
                ra.attname::text AS ref_col
         FROM pg_constraint c
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
         JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1]
         WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace",
    )
    .fetch_all(&mut db)
    .await
    .expect("foreign keys")
    {
        let table = schema.entry(fk.get("t")).or_default();
        table.foreign_keys.push((fk.get("col"), fk.get("ref_t"), fk.get("ref_col")));
    }
    for check in sqlx::query(
        "SELECT conrelid::regclass::text AS t, count(*) AS n FROM pg_constraint
         WHERE contype = 'c' AND connamespace = 'public'::regnamespace GROUP BY 1",
    )
    .fetch_all(&mut db)
    .await
    .expect("checks")
    {
        schema.entry(check.get("t")).or_default().checks = usize::try_from(check.get::<i64, _>("n")).expect("count");
    }
    for table in schema.values_mut() {
        table.indexes.sort();
        table.foreign_keys.sort();
    }
    schema
}

#[tokio::test]
async fn both_migrations_make_the_same_schema() {
    let dir = tempfile::tempdir().expect("dir");
    let sqlite_url = format!("sqlite://{}", dir.path().join("schema.db").display());
    drop(SqlStore::open_sqlite(&sqlite_url, None).await.expect("migrate SQLite"));
    let postgres_url = postgres_database().await;
    let key = SealingKey::from_base64(SECRETS_KEY).expect("key");
    drop(SqlStore::open_postgres(&postgres_url, key).await.expect("migrate PostgreSQL"));

    let sqlite = sqlite_schema(&sqlite_url).await;
    let postgres = postgres_schema(&postgres_url).await;
    assert_eq!(sqlite.keys().collect::<Vec<_>>(), postgres.keys().collect::<Vec<_>>(), "the same tables");
    assert!(sqlite.len() >= 9, "every table was read: {:?}", sqlite.keys());
    for (name, table) in &sqlite {
        assert_eq!(table, &postgres[name], "table {name}: SQLite (left) and PostgreSQL (right) differ");
    }
}

#[tokio::test]
async fn postgresql_compresses_payloads_with_lz4_where_it_can() {
    let url = postgres_database().await;
    let key = SealingKey::from_base64(SECRETS_KEY).expect("key");
    drop(SqlStore::open_postgres(&url, key).await.expect("migrate PostgreSQL"));
    let mut db = sqlx::PgConnection::connect(&url).await.expect("connect");
    // Debian's PostgreSQL (the one the tests run on) is built with lz4; the migration keeps
    // pglz only where the server has no lz4.
    let available: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals))",
    )
    .fetch_one(&mut db)
    .await
    .expect("settings");
    let compression: String = sqlx::query_scalar(
        "SELECT attcompression::text FROM pg_attribute WHERE attrelid = 'messages'::regclass AND attname = 'payload'",
    )
    .fetch_one(&mut db)
    .await
    .expect("payload column");
    assert!(available, "this PostgreSQL has no lz4, so the test would prove nothing");
    assert_eq!(compression, "l", "messages.payload is compressed with lz4");
}
