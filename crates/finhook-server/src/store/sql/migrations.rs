//! The schema migrations of each database, embedded in the binary.
//!
//! Written out here instead of `sqlx::migrate!`: that macro needs sqlx's `macros` feature,
//! which compiles sqlx and both database drivers a second time (as a proc-macro for the
//! host) and more than doubles the store's share of a clean build. Each migration is the
//! same `sqlx::migrate::Migration` the macro would make (version and description from the
//! file name, checksum of the SQL), so databases migrated by earlier builds stay valid; a
//! test checks that every file of the folder is listed.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use crate::store::StoreError;

/// A migrations folder: the file names (`<version>_<description>.sql`) with their SQL.
pub type Folder = &'static [(&'static str, &'static str)];

macro_rules! folder {
    ($dir:literal: $($file:literal),+ $(,)?) => {
        &[$(($file, include_str!(concat!("../../../migrations/", $dir, "/", $file)))),+]
    };
}

/// `migrations/sqlite`.
pub const SQLITE: Folder = folder!("sqlite":
    "0001_init.sql",
    "0002_sandbox.sql",
    "0003_sandbox_pending.sql",
    "0004_response_bytes.sql",
    "0005_drop_duplicate_index.sql",
    "0006_pending_by_endpoint.sql",
    "0007_messages_by_created_at.sql",
    "0008_release_old_claims.sql",
    "0009_nodes.sql",
    "0010_instance_stored_bytes.sql",
    "0011_ed25519_signing.sql",
    "0012_client_certificates.sql",
    "0013_ledger.sql",
    "0014_certificate_watch.sql",
    "0015_operational_events.sql",
    "0016_superseded_deliveries.sql",
    "0017_endpoint_minutes.sql",
    "0018_recoveries.sql",
    "0019_audit_log.sql",
    "0020_portal_links.sql",
    "0021_ordered_delivery.sql",
    "0022_pending_by_login.sql",
    "0023_payload_log.sql",
);

/// `migrations/postgres`.
pub const POSTGRES: Folder = folder!("postgres":
    "0001_init.sql",
    "0002_response_bytes.sql",
    "0003_endpoint_secrets_without_seq.sql",
    "0004_pending_by_endpoint.sql",
    "0005_messages_by_created_at.sql",
    "0006_nodes.sql",
    "0007_instance_stored_bytes.sql",
    "0008_payload_lz4.sql",
    "0009_ed25519_signing.sql",
    "0010_client_certificates.sql",
    "0011_ledger.sql",
    "0012_certificate_watch.sql",
    "0013_operational_events.sql",
    "0014_superseded_deliveries.sql",
    "0015_endpoint_minutes.sql",
    "0016_recoveries.sql",
    "0017_audit_log.sql",
    "0018_portal_links.sql",
    "0019_ordered_delivery.sql",
    "0020_pending_by_login.sql",
    "0021_payload_log.sql",
);

/// The migrator for one folder.
pub async fn migrator(folder: Folder) -> Result<Migrator, StoreError> {
    Ok(Migrator::new(Embedded(folder)).await?)
}

#[derive(Debug)]
struct Embedded(Folder);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send>> {
        Box::pin(async move { self.0.iter().map(|(name, sql)| migration(name, sql)).collect() })
    }
}

/// The migration `sqlx::migrate!` makes of the file `name`.
fn migration(name: &str, sql: &'static str) -> Result<Migration, BoxDynError> {
    let (version, rest) =
        name.split_once('_').ok_or_else(|| format!("{name}: expected <version>_<description>.sql"))?;
    let version: i64 = version.parse().map_err(|_| format!("{name}: the version is not a number"))?;
    let description =
        rest.strip_suffix(".sql").ok_or_else(|| format!("{name}: expected a .sql file"))?.replace('_', " ");
    let no_tx = sql.starts_with("-- no-transaction");
    Ok(Migration::new(version, Cow::Owned(description), MigrationType::Simple, Cow::Borrowed(sql), no_tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(dir: &str, folder: Folder) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dir);
        let mut on_disk: Vec<String> = std::fs::read_dir(&path)
            .expect("migrations folder")
            .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = folder.iter().map(|(name, _)| name.to_string()).collect();
        assert_eq!(embedded, on_disk, "list every file of migrations/{dir} in store/sql/migrations.rs, in order");
    }

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        listed("sqlite", SQLITE);
        listed("postgres", POSTGRES);
    }

    #[test]
    fn versions_descriptions_and_checksums_are_those_of_sqlx_migrate() {
        let m = migration("0002_response_bytes.sql", "ALTER TABLE x ADD y;").expect("migration");
        assert_eq!((m.version, m.description.as_ref()), (2, "response bytes"));
        assert_eq!(m.checksum.len(), 48, "SHA-384 of the SQL");
        assert!(migration("init.sql", "").is_err());
        assert!(migration("x_init.sql", "").is_err());
    }
}
