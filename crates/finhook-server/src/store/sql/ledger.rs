//! The ledger's tables, written once for both databases (see [`crate::store::ledger`]).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use finhook_core::ledger::{entry_hash, LedgerEntry, LedgerFacts, GENESIS};
use finhook_core::secret::hex;

use super::sets::Writes;
use super::SqlStore;
use crate::store::db::{placeholders, sql, Arg, Column, Conn, Row, Sql};
use crate::store::ledger::{LedgerHead, LedgerStore, SEAL_BATCH};
use crate::store::rows::{corrupt, millis, time_of, Cols};
use crate::store::{AttemptResult, InstanceId, StoreResult};

/// The advisory lock that makes one PostgreSQL session at a time the sealer (any fixed
/// number: finhook takes no other advisory lock).
const SEALER_LOCK: i64 = 0x6669_6e68_6f6f_6b4c; // "finhookL"

/// The columns of an entry, with its instance's name.
const ENTRY_COLUMNS: &str = "i.name AS instance, e.seq, e.attempt_id, e.message_id, e.body_sha256, e.endpoint_url,
     e.attempt_number, e.attempted_at, e.status_code, e.error_class, e.hash";

#[async_trait]
impl LedgerStore for SqlStore {
    async fn seal_ledger(&self) -> StoreResult<usize> {
        // Nearly always empty (always on SQLite): a read says so without taking the writer.
        if self.pools.read_optional(sql("SELECT id FROM ledger_pending LIMIT 1")).await?.is_none() {
            return Ok(0);
        }
        let mut tx = self.pools.begin().await?;
        let mut conn = tx.conn();
        if !holds_the_chain(&mut conn).await? {
            return Ok(0); // Another node is chaining; the transaction rolls back on drop.
        }
        let queued = conn
            .fetch_all(
                sql("SELECT p.id, p.attempt_id, p.instance_id, i.name AS instance, p.message_id, p.body_sha256,
                            p.endpoint_url, p.attempt_number, p.attempted_at, p.status_code, p.error_class
                     FROM ledger_pending p JOIN instances i ON i.id = p.instance_id
                     ORDER BY p.id LIMIT $1")
                .bind(SEAL_BATCH as i64),
            )
            .await?;
        if queued.is_empty() {
            return Ok(0);
        }
        let links = queued
            .iter()
            .map(|row| {
                let attempted_at = row.int("attempted_at")?;
                Ok(Link {
                    instance: InstanceId(row.int("instance_id")?),
                    facts: facts_from(row, attempted_at)?,
                    attempted_at,
                    pending_id: Some(row.int("id")?),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let instances: Vec<InstanceId> = links.iter().map(|link| link.instance).collect();
        let heads = Chaining::read(&mut conn, &instances).await?.heads;
        append(&mut conn, links, heads).await?;
        tx.commit().await?;
        Ok(queued.len())
    }

    async fn ledger_queued(&self) -> StoreResult<u64> {
        let row = self.pools.read_optional(sql("SELECT COUNT(*) AS queued FROM ledger_pending")).await?;
        Ok(row.map(|row| row.int("queued")).transpose()?.unwrap_or(0).max(0).unsigned_abs())
    }

    async fn ledger_entries(&self, instance: InstanceId, after: u64, limit: usize) -> StoreResult<Vec<LedgerEntry>> {
        // Entry `after` itself comes first when there is one: its hash is the next one's `prev_hash`.
        let query = sql(format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries e JOIN instances i ON i.id = e.instance_id
             WHERE e.instance_id = $1 AND e.seq >= $2 ORDER BY e.seq LIMIT $3"
        ))
        .bind(instance.0)
        .bind(seq_arg(after))
        .bind(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX));
        let rows = self.pools.read_all(query).await?;
        let mut prev = GENESIS;
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq = row.int("seq")?.max(0).unsigned_abs();
            if seq == after {
                prev = hash_of(row.bytes("hash")?)?;
                continue;
            }
            let entry = entry_from(row, &prev)?;
            prev = hash_of(row.bytes("hash")?)?;
            entries.push(entry);
        }
        entries.truncate(limit);
        Ok(entries)
    }

    async fn ledger_first_since(&self, instance: InstanceId, since: DateTime<Utc>) -> StoreResult<Option<u64>> {
        let query = sql("SELECT MIN(seq) AS seq FROM ledger_entries WHERE instance_id = $1 AND attempted_at >= $2")
            .bind(instance.0)
            .bind(millis(since));
        let row = self.pools.read_optional(query).await?;
        Ok(row.map(|row| row.opt_int("seq")).transpose()?.flatten().map(i64::unsigned_abs))
    }

    async fn ledger_head(&self, instance: InstanceId) -> StoreResult<Option<LedgerHead>> {
        let query = sql(format!("{HEADS} WHERE h.instance_id = $1")).bind(instance.0);
        self.pools.read_optional(query).await?.as_ref().map(head_from).transpose()
    }

    async fn ledger_heads(&self) -> StoreResult<Vec<LedgerHead>> {
        self.pools.read_all(sql(format!("{HEADS} ORDER BY i.name"))).await?.iter().map(head_from).collect()
    }
}

const HEADS: &str =
    "SELECT h.instance_id, i.name AS instance, h.seq, h.hash FROM ledger_heads h JOIN instances i ON i.id = h.instance_id";

/// Whether this transaction may extend the chains: always on SQLite (one writer), on
/// PostgreSQL if it holds the chain's advisory lock, which it then keeps until it ends.
async fn holds_the_chain(conn: &mut Conn<'_>) -> Result<bool, sqlx::Error> {
    match conn {
        Conn::Sqlite(_) | Conn::Direct(_) => Ok(true),
        Conn::Postgres(_) => {
            let row = conn.fetch_one(sql("SELECT pg_try_advisory_xact_lock($1) AS locked").bind(SEALER_LOCK)).await?;
            row.flag("locked")
        }
    }
}

/// Puts the attempts recorded in the open transaction into the ledger: chained at once
/// when this transaction may extend the chains (always on SQLite), queued for the sealer
/// otherwise. The group commit calls it before it commits, so an attempt and its ledger
/// entry (or its place in the queue) are durable together. (The embedded store's fast
/// path chains as it writes instead, through [`Chaining`], to add no round trip.)
pub(super) async fn chain_recorded(conn: &mut Conn<'_>, records: &[&AttemptResult]) -> StoreResult<()> {
    let Some(chaining) = Chaining::start(conn, records).await? else {
        if !records.is_empty() {
            super::sets::pending_set(records).run(conn).await?;
        }
        return Ok(());
    };
    let links = records.iter().map(|record| chaining.link(record)).collect::<StoreResult<Vec<_>>>()?;
    append(conn, links, chaining.heads).await
}

/// On PostgreSQL, what puts `records` into the ledger, for the group commit to send with
/// the rest of its batch in one statement: their entries and the new heads when this
/// transaction takes the chains, their place in the sealer's queue otherwise. The lock and
/// the heads are taken in one read.
pub(super) async fn chain_writes(conn: &mut Conn<'_>, records: &[&AttemptResult]) -> StoreResult<Writes> {
    if records.is_empty() {
        return Ok(Writes::default());
    }
    let mut ids: Vec<Option<i64>> = records.iter().map(|record| Some(record.ledger.instance_id.0)).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = conn
        .fetch_all(
            sql("WITH l AS MATERIALIZED (SELECT pg_try_advisory_xact_lock($1) AS locked)
                 SELECT l.locked, i.id, i.name, h.seq, h.hash
                 FROM l LEFT JOIN instances i ON l.locked AND i.id = ANY($2)
                        LEFT JOIN ledger_heads h ON h.instance_id = i.id")
            .bind(SEALER_LOCK)
            .bind(Arg::Array(Column::Ints(ids))),
        )
        .await?;
    let locked = rows.first().map(|row| row.flag("locked")).transpose()?.unwrap_or(false);
    if !locked {
        return Ok(super::sets::pending_set(records));
    }
    let mut chaining = Chaining { heads: Heads::new(), names: HashMap::new() };
    for row in &rows {
        chaining.add(row)?;
    }
    let links = records.iter().map(|record| chaining.link(record)).collect::<StoreResult<Vec<_>>>()?;
    let (sealed, heads) = sealed(links, chaining.heads);
    Ok(super::sets::sealed_set(&sealed, &heads))
}

/// Chaining in progress in a transaction that holds the chains: the heads of the chains of
/// the instances concerned, and their names.
#[derive(Debug)]
pub(super) struct Chaining {
    heads: Heads,
    names: HashMap<InstanceId, String>,
}

impl Chaining {
    /// Reads what chaining `records` needs, in one read. `None` when there are none, or
    /// when another PostgreSQL session holds the chains.
    pub(super) async fn start(conn: &mut Conn<'_>, records: &[&AttemptResult]) -> StoreResult<Option<Self>> {
        if records.is_empty() || !holds_the_chain(conn).await? {
            return Ok(None);
        }
        let instances: Vec<InstanceId> = records.iter().map(|record| record.ledger.instance_id).collect();
        Ok(Some(Self::read(conn, &instances).await?))
    }

    /// The names and chain heads of `instances`, in one read per [`IDS_PER_READ`] of them.
    async fn read(conn: &mut Conn<'_>, instances: &[InstanceId]) -> StoreResult<Self> {
        let mut ids: Vec<i64> = instances.iter().map(|instance| instance.0).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut chaining = Chaining { heads: Heads::new(), names: HashMap::new() };
        for chunk in ids.chunks(IDS_PER_READ) {
            let query = sql(format!(
                "SELECT i.id, i.name, h.seq, h.hash FROM instances i LEFT JOIN ledger_heads h ON h.instance_id = i.id
                 WHERE i.id IN ({})",
                placeholders(1, IDS_PER_READ)
            ))
            .bind_each(padded(chunk, IDS_PER_READ));
            for row in conn.fetch_all(query).await? {
                chaining.add(&row)?;
            }
        }
        Ok(chaining)
    }

    /// An instance's name and chain head, from a row of `id`, `name`, `seq` and `hash`
    /// (the last two null for an instance whose chain has not started).
    fn add(&mut self, row: &Row) -> StoreResult<()> {
        let instance = InstanceId(row.int("id")?);
        if let Some(seq) = row.opt_int("seq")? {
            self.heads.insert(instance, (seq.max(0).unsigned_abs(), hash_of(row.bytes("hash")?)?));
        }
        self.names.insert(instance, row.text("name")?);
        Ok(())
    }

    /// `record` as a link to chain, not yet numbered.
    fn link(&self, record: &AttemptResult) -> StoreResult<Link> {
        let source = &record.ledger;
        let name = self.names.get(&source.instance_id).ok_or_else(|| {
            corrupt(format!("no instance {} for attempt {}", source.instance_id.0, record.attempt.id))
        })?;
        let attempt = &record.attempt;
        let attempted_at = millis(attempt.started_at);
        Ok(Link {
            instance: source.instance_id,
            facts: LedgerFacts {
                instance: name.clone(),
                attempt_id: attempt.id.to_string(),
                message_id: source.message_id.to_string(),
                body_sha256: source.body_sha256.clone(),
                endpoint_url: source.endpoint_url.clone(),
                attempt: attempt.attempt_number,
                attempted_at: time_of(attempted_at)?.to_rfc3339_opts(SecondsFormat::Millis, true),
                status: attempt.status_code,
                error_class: attempt.error_class.map(|class| class.as_str().to_string()),
            },
            attempted_at,
            pending_id: None,
        })
    }

    /// Chains `record` next in its instance's chain; the statement that writes its entry.
    pub(super) fn entry(&mut self, record: &AttemptResult) -> StoreResult<Sql> {
        let link = self.link(record)?;
        Ok(insert_entry(&numbered(&mut self.heads, link)))
    }

    /// The statements that store the new heads, once every entry is chained.
    pub(super) fn finish(self) -> Vec<Sql> {
        self.heads.into_iter().map(|(instance, (seq, hash))| upsert_head(instance, seq, &hash)).collect()
    }
}

/// How many ids one read of [`chain_recorded`] or [`append`] binds: a fixed count (the
/// last chunk padded with repeats), so each read is one text that stays prepared instead
/// of a new text for every batch size crowding the statement cache.
const IDS_PER_READ: usize = 32;

fn padded<'a, T: Clone>(chunk: &'a [T], to: usize) -> impl Iterator<Item = T> + 'a {
    let last = chunk.last().cloned();
    chunk.iter().cloned().chain(std::iter::repeat_n(last, to - chunk.len()).flatten())
}

/// An attempt about to be chained: its instance, its entry's facts, and where it came from.
#[derive(Debug)]
struct Link {
    instance: InstanceId,
    facts: LedgerFacts,
    attempted_at: i64,
    /// Its row of `ledger_pending`, when the sealer took it from there.
    pending_id: Option<i64>,
}

/// The last link of each instance's chain: seq and hash.
type Heads = HashMap<InstanceId, (u64, [u8; 32])>;

/// An instance's chain head after an append: instance, seq and hash.
pub(super) type NewHead = (InstanceId, u64, [u8; 32]);

/// Appends `links`, in their order, to their instances' chains, whose heads are `heads`
/// (read in the open transaction, which holds the chains): numbers and hashes the entries,
/// writes them (deleting the queue rows they came from) and the new heads.
async fn append(conn: &mut Conn<'_>, links: Vec<Link>, heads: Heads) -> StoreResult<()> {
    let (sealed, heads) = sealed(links, heads);
    match conn {
        Conn::Postgres(_) => super::sets::sealed_set(&sealed, &heads).run(conn).await?,
        Conn::Sqlite(_) | Conn::Direct(_) => write_sealed_in_hops(conn, &sealed, &heads).await?,
    }
    Ok(())
}

/// `links` numbered and hashed in order after `heads`; and the heads they lead to.
fn sealed(links: Vec<Link>, mut heads: Heads) -> (Vec<Sealed>, Vec<NewHead>) {
    let sealed: Vec<Sealed> = links.into_iter().map(|link| numbered(&mut heads, link)).collect();
    (sealed, heads.into_iter().map(|(instance, (seq, hash))| (instance, seq, hash)).collect())
}

/// `link` numbered and hashed as the next entry of its instance's chain, whose head moves.
fn numbered(heads: &mut Heads, link: Link) -> Sealed {
    let (seq, prev) = heads.entry(link.instance).or_insert((0, GENESIS));
    *seq += 1;
    *prev = entry_hash(prev, &link.facts.canonical(*seq));
    Sealed {
        instance: link.instance,
        seq: *seq,
        facts: link.facts,
        hash: *prev,
        attempted_at: link.attempted_at,
        pending_id: link.pending_id,
    }
}

/// An entry chained by this transaction, with where it came from.
#[derive(Debug)]
pub(super) struct Sealed {
    pub(super) instance: InstanceId,
    pub(super) seq: u64,
    pub(super) facts: LedgerFacts,
    pub(super) hash: [u8; 32],
    pub(super) attempted_at: i64,
    /// Its row of `ledger_pending`, if it was queued.
    pub(super) pending_id: Option<i64>,
}

/// How many entries go to SQLite's connection thread in one multi-statement query: few
/// texts (one per count up to this, with or without their queue rows' deletion), each
/// prepared once and cached, and few hops.
const ENTRIES_PER_HOP: usize = 8;

/// Writes the chained entries, their queue rows' deletion and the new heads on SQLite.
async fn write_sealed_in_hops(
    conn: &mut Conn<'_>,
    sealed: &[Sealed],
    heads: &[(InstanceId, u64, [u8; 32])],
) -> StoreResult<()> {
    for chunk in sealed.chunks(ENTRIES_PER_HOP) {
        let mut statements = Vec::with_capacity(chunk.len() * 2);
        for one in chunk {
            statements.push(insert_entry(one));
            if let Some(pending) = one.pending_id {
                statements.push(sql("DELETE FROM ledger_pending WHERE id = $1").bind(pending));
            }
        }
        conn.execute_all(statements).await?;
    }
    for chunk in heads.chunks(ENTRIES_PER_HOP) {
        conn.execute_all(chunk.iter().map(|(instance, seq, hash)| upsert_head(*instance, *seq, hash)).collect())
            .await?;
    }
    Ok(())
}

fn upsert_head(instance: InstanceId, seq: u64, hash: &[u8; 32]) -> Sql {
    sql("INSERT INTO ledger_heads (instance_id, seq, hash) VALUES ($1, $2, $3)
         ON CONFLICT (instance_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash")
    .bind(instance.0)
    .bind(seq_arg(seq))
    .bind(hash.to_vec())
}

fn insert_entry(one: &Sealed) -> Sql {
    let facts = &one.facts;
    sql("INSERT INTO ledger_entries (instance_id, seq, attempt_id, message_id, body_sha256, endpoint_url,
                                     attempt_number, attempted_at, status_code, error_class, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
    .bind(one.instance.0)
    .bind(seq_arg(one.seq))
    .bind(&facts.attempt_id)
    .bind(&facts.message_id)
    .bind(&facts.body_sha256)
    .bind(&facts.endpoint_url)
    .bind(i64::from(facts.attempt))
    .bind(one.attempted_at)
    .bind(facts.status.map(i64::from))
    .bind(&facts.error_class)
    .bind(one.hash.to_vec())
}

pub(super) fn seq_arg(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// An entry's facts from a row of `ledger_pending` or `ledger_entries`.
fn facts_from(row: &impl Cols, attempted_at_ms: i64) -> StoreResult<LedgerFacts> {
    Ok(LedgerFacts {
        instance: row.text("instance")?,
        attempt_id: row.text("attempt_id")?,
        message_id: row.text("message_id")?,
        body_sha256: row.text("body_sha256")?,
        endpoint_url: row.text("endpoint_url")?,
        attempt: u32::try_from(row.int("attempt_number")?).map_err(corrupt)?,
        attempted_at: time_of(attempted_at_ms)?.to_rfc3339_opts(SecondsFormat::Millis, true),
        status: row.opt_int("status_code")?.map(u16::try_from).transpose().map_err(corrupt)?,
        error_class: row.opt_text("error_class")?,
    })
}

/// An entry of `ledger_entries`, whose previous entry's hash is `prev`.
fn entry_from(row: &impl Cols, prev: &[u8; 32]) -> StoreResult<LedgerEntry> {
    Ok(LedgerEntry {
        seq: row.int("seq")?.max(0).unsigned_abs(),
        facts: facts_from(row, row.int("attempted_at")?)?,
        prev_hash: hex(prev),
        hash: hex(&hash_of(row.bytes("hash")?)?),
    })
}

/// A stored 32-byte hash.
fn hash_of(bytes: Vec<u8>) -> StoreResult<[u8; 32]> {
    <[u8; 32]>::try_from(bytes).map_err(|bytes| corrupt(format!("a ledger hash of {} bytes", bytes.len())))
}

fn head_from(row: &impl Cols) -> StoreResult<LedgerHead> {
    Ok(LedgerHead {
        instance_id: InstanceId(row.int("instance_id")?),
        instance: row.text("instance")?,
        seq: row.int("seq")?.max(0).unsigned_abs(),
        hash: hex(&hash_of(row.bytes("hash")?)?),
    })
}
