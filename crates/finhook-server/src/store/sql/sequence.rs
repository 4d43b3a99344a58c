//! `webhook-sequence`: each delivery's place among the deliveries of its LoginId's
//! callbacks to its endpoint, from 1 and without gaps, so that a receiver can tell it
//! missed one whatever order they arrive in.
//!
//! A batch reads once the last number each endpoint gave each of its LoginIds
//! (`login_sequences`), numbers its own ingests on from there in their order, and writes the
//! new last numbers back in the same transaction. On PostgreSQL the batch first takes a
//! transaction lock per LoginId, in a fixed order, so that two nodes' batches number one
//! LoginId's callbacks one after the other, not both from the same count.

use std::collections::{HashMap, HashSet};

use finhook_core::ids::EndpointId;
use sha2::{Digest, Sha256};

use crate::store::db::{sql, Arg, Column, Conn};
use crate::store::rows::{corrupt, Cols};
use crate::store::{InstanceId, StoreResult};

/// How many LoginIds one read asks about.
const PER_READ: usize = 100;

/// The advisory-lock namespace of LoginIds (the two-key form: it never meets the ledger's
/// one-key lock).
const LOGIN_LOCKS: i32 = 0x6668_6b53; // "fhkS"

/// The next numbers of a batch, per instance, LoginId and endpoint.
#[derive(Debug, Default)]
pub(super) struct Sequences {
    next: HashMap<(InstanceId, String, EndpointId), u64>,
    read: HashSet<(InstanceId, String)>,
    /// Numbers given since the last [`Sequences::written`].
    dirty: HashSet<(InstanceId, String, EndpointId)>,
}

impl Sequences {
    /// Reads, for the LoginIds of `logins` not read yet, how many of their callbacks each
    /// endpoint has: one query per [`PER_READ`] of them (after their locks on PostgreSQL).
    pub(super) async fn read(&mut self, conn: &mut Conn<'_>, logins: &[(InstanceId, String)]) -> StoreResult<()> {
        let mut unread: Vec<(InstanceId, String)> =
            logins.iter().filter(|pair| !self.read.contains(*pair)).cloned().collect();
        unread.sort_unstable_by(|a, b| (a.0 .0, &a.1).cmp(&(b.0 .0, &b.1)));
        unread.dedup();
        if unread.is_empty() {
            return Ok(());
        }
        if matches!(conn, Conn::Postgres(_)) {
            let mut keys: Vec<Option<i64>> = unread.iter().map(|(i, l)| Some(i64::from(lock_key(*i, l)))).collect();
            keys.sort_unstable();
            keys.dedup();
            // Sorted, so two batches never wait on each other's locks in opposite orders.
            conn.execute(
                sql("SELECT pg_advisory_xact_lock($1::int4, k::int4) FROM unnest($2::int8[]) AS k ORDER BY k")
                    .bind(i64::from(LOGIN_LOCKS))
                    .bind(Arg::Array(Column::Ints(keys))),
            )
            .await?;
        }
        for chunk in unread.chunks(PER_READ) {
            let pairs: Vec<String> = (0..chunk.len())
                .map(|n| format!("(CAST(${} AS BIGINT), CAST(${} AS TEXT))", 2 * n + 1, 2 * n + 2))
                .collect();
            let mut query = sql(format!(
                "SELECT instance_id, login_id, endpoint_id, last AS n FROM login_sequences
                 WHERE (instance_id, login_id) IN (VALUES {})",
                pairs.join(", ")
            ));
            for (instance, login) in chunk {
                query = query.bind(instance.0).bind(login.clone());
            }
            for row in conn.fetch_all(query).await? {
                let endpoint = EndpointId::parse(&row.text("endpoint_id")?).map_err(corrupt)?;
                let key = (InstanceId(row.int("instance_id")?), row.text("login_id")?, endpoint);
                let count = u64::try_from(row.int("n")?).map_err(corrupt)?;
                self.next.insert(key, count + 1);
            }
        }
        self.read.extend(unread);
        Ok(())
    }

    /// The number of the next callback of `login` to `endpoint`, counted on. The LoginId
    /// must have been [`read`](Self::read) in this transaction.
    pub(super) fn take(&mut self, instance: InstanceId, login: &str, endpoint: &EndpointId) -> u64 {
        debug_assert!(self.read.contains(&(instance, login.to_string())), "read before numbering");
        let key = (instance, login.to_string(), endpoint.clone());
        let next = self.next.entry(key.clone()).or_insert(1);
        let taken = *next;
        *next += 1;
        self.dirty.insert(key);
        taken
    }

    /// The statements that store the last numbers given since the last call, to run in
    /// the same transaction (or savepoint) as the deliveries that carry them.
    pub(super) fn written(&mut self) -> Vec<crate::store::db::Sql> {
        let mut dirty: Vec<(InstanceId, String, EndpointId)> = self.dirty.drain().collect();
        dirty.sort_unstable_by(|a, b| (a.0 .0, &a.1, a.2.as_str()).cmp(&(b.0 .0, &b.1, b.2.as_str())));
        dirty
            .chunks(PER_READ)
            .map(|chunk| {
                let rows: Vec<String> = (0..chunk.len())
                    .map(|n| format!("(${}, ${}, ${}, ${})", 4 * n + 1, 4 * n + 2, 4 * n + 3, 4 * n + 4))
                    .collect();
                let mut upsert = sql(format!(
                    "INSERT INTO login_sequences (instance_id, login_id, endpoint_id, last) VALUES {}
                     ON CONFLICT (instance_id, login_id, endpoint_id) DO UPDATE SET last = excluded.last",
                    rows.join(", ")
                ));
                for key in chunk {
                    let last = self.next.get(key).map_or(0, |next| next - 1);
                    upsert = upsert
                        .bind(key.0 .0)
                        .bind(key.1.clone())
                        .bind(key.2.as_str())
                        .bind(i64::try_from(last).unwrap_or(i64::MAX));
                }
                upsert
            })
            .collect()
    }

    /// Forgets what this batch counted (its transaction, or a savepoint of it, was rolled
    /// back): the next number is read again.
    pub(super) fn forget(&mut self) {
        self.next.clear();
        self.read.clear();
        self.dirty.clear();
    }
}

/// A LoginId's lock key in [`LOGIN_LOCKS`]: 32 bits of SHA-256 (two LoginIds that share
/// one only wait for each other).
fn lock_key(instance: InstanceId, login: &str) -> i32 {
    let digest = Sha256::new().chain_update(instance.0.to_be_bytes()).chain_update(login.as_bytes()).finalize();
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}
