//! The embedded store's payload log: callback bodies appended to segment files beside the
//! SQLite database, each message row keeping where its body is (segment, offset, length).
//!
//! Why not in the row: SQLite writes an 8 KiB body as a chain of overflow pages, first into
//! the WAL (with a checksum over every page) and again into the database file when the WAL
//! is checkpointed, and walks the chain to free it. That was about a fifth of the server's
//! CPU per callback over one endpoint (docs/BENCHMARKS.md, "The payload log"). Here a
//! batch's bodies are one positioned write and one `fdatasync`, and the rows stay small.
//!
//! The invariants that keep an acknowledged callback's body safe:
//! - **Durable before referenced.** The group commit appends while it writes the rows and
//!   [`PayloadLog::sync`]s before its `COMMIT`; a failed sync fails the batch (no `202`).
//!   Bytes appended by a batch that did not commit are garbage nobody references.
//! - **A segment that failed is never written again.** After a failed write or sync the
//!   kernel may have dropped dirty pages while a later `fdatasync` reports success; so the
//!   log moves to a new segment, and each start of the process opens a new one too (the
//!   tail of the last one may hold a torn write).
//! - **Checked on the way back.** [`read`] compares the bytes with the SHA-256 stored with
//!   the message; a mismatch is reported as corruption, never served.
//! - **Dropped only when unreferenced.** [`PayloadLog::drop_before`] removes segments older
//!   than both the one being written and the oldest any message row names.
//!
//! Written by hand: no crate keeps an append-only file of blobs with these guarantees
//! without bringing its own database; this is a few positioned writes and reads.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::store::queue::CheckedPayload;
use crate::store::rows::Cols;
use crate::store::StoreError;

/// A segment takes appends until it holds this much; then the next begins.
const SEGMENT_BYTES: u64 = 64 << 20;

/// The file name's ending of a segment.
const SEGMENT_SUFFIX: &str = ".segment";

/// Where a body is in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PayloadRef {
    pub segment: u64,
    pub offset: u64,
    pub length: u64,
}

/// The appending side, owned by the group commit (one writer at a time).
#[derive(Debug)]
pub(crate) struct PayloadLog {
    dir: PathBuf,
    /// [`SEGMENT_BYTES`], but in tests.
    segment_bytes: u64,
    tail: Mutex<Tail>,
}

/// The segment being written.
#[derive(Debug)]
struct Tail {
    segment: u64,
    /// Opened (created) at the first write to it.
    file: Option<File>,
    /// Bytes of `segment` written to the file.
    written: u64,
    /// Appended since the last sync, not yet written: the bodies themselves (shared, not
    /// copied), written with one vectored write.
    pending: Vec<Bytes>,
    /// Their length in all.
    pending_bytes: u64,
}

impl PayloadLog {
    /// The log in `dir` (created, mode 0700, if missing); appends go to a new segment after
    /// the newest one there.
    pub(crate) fn open(dir: PathBuf) -> io::Result<Self> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        let newest = segments(&dir)?.into_iter().max();
        let segment = newest.map_or(1, |newest| newest + 1);
        let tail = Tail { segment, file: None, written: 0, pending: Vec::new(), pending_bytes: 0 };
        Ok(Self { dir, segment_bytes: SEGMENT_BYTES, tail: Mutex::new(tail) })
    }

    /// Those of `segments` that have no file.
    pub(crate) fn missing(&self, segments: &[u64]) -> Vec<u64> {
        let mut missing: Vec<u64> =
            segments.iter().copied().filter(|segment| !segment_path(&self.dir, *segment).exists()).collect();
        missing.dedup();
        missing
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn tail(&self) -> std::sync::MutexGuard<'_, Tail> {
        // A panic while holding it leaves at worst unsynced bytes, which `sync` writes or
        // a new segment abandons: the state is still consistent.
        self.tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `bytes` for the next [`PayloadLog::sync`]; where they will be.
    pub(crate) fn append(&self, bytes: &Bytes) -> PayloadRef {
        let mut tail = self.tail();
        let at =
            PayloadRef { segment: tail.segment, offset: tail.written + tail.pending_bytes, length: bytes.len() as u64 };
        tail.pending_bytes += at.length;
        tail.pending.push(bytes.clone());
        at
    }

    /// Writes what was appended since the last call and makes it durable. After an error
    /// nothing appended before it may be referenced (its batch must not commit), and appends
    /// go to a new segment.
    pub(crate) fn sync(&self) -> io::Result<()> {
        let mut tail = self.tail();
        if tail.pending.is_empty() {
            return Ok(());
        }
        match tail.write_pending(&self.dir) {
            Ok(()) => {
                if tail.written >= self.segment_bytes {
                    tail.next_segment();
                }
                Ok(())
            }
            Err(error) => {
                tail.next_segment();
                Err(error)
            }
        }
    }

    /// The segment appends go to now. Read before the oldest segment rows still name (see
    /// [`PayloadLog::drop_before`]).
    pub(crate) fn active_segment(&self) -> u64 {
        self.tail().segment
    }

    /// The disk space the segments take: their allocated blocks, so erased bodies no longer
    /// count.
    pub(crate) fn disk_bytes(&self) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        let mut total = 0;
        for segment in segments(&self.dir)? {
            match std::fs::metadata(segment_path(&self.dir, segment)) {
                Ok(metadata) => total += metadata.blocks() * 512,
                // Removed by retention since the listing.
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        Ok(total)
    }

    /// Removes the segments older than `oldest_needed`, and older than `active` (the
    /// segment being written when the caller began, read before `oldest_needed` was: rows
    /// of a batch not yet committed then are in `active` or later). How many were removed.
    pub(crate) fn drop_before(&self, active: u64, oldest_needed: Option<u64>) -> io::Result<usize> {
        let keep_from = oldest_needed.map_or(active, |oldest| oldest.min(active));
        let mut removed = 0;
        for segment in segments(&self.dir)? {
            if segment < keep_from {
                std::fs::remove_file(segment_path(&self.dir, segment))?;
                removed += 1;
            }
        }
        if removed > 0 {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(removed)
    }
}

impl PayloadLog {
    /// Erases the bodies at `ranges` from their segments (their messages are gone): the
    /// file system frees their blocks (a hole reads as zeros) or, where it cannot, they are
    /// overwritten with zeros; then synced. A segment already removed has nothing to erase.
    pub(crate) fn erase(&self, ranges: &[PayloadRef]) -> io::Result<()> {
        use rustix::fs::{fallocate, FallocateFlags};
        let mut by_segment: std::collections::BTreeMap<u64, Vec<&PayloadRef>> = Default::default();
        for at in ranges {
            by_segment.entry(at.segment).or_default().push(at);
        }
        for (segment, ranges) in by_segment {
            let file = match OpenOptions::new().write(true).open(segment_path(&self.dir, segment)) {
                Ok(file) => file,
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            };
            for at in ranges {
                let punched =
                    fallocate(&file, FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE, at.offset, at.length);
                match punched {
                    Ok(()) => {}
                    Err(rustix::io::Errno::OPNOTSUPP) => {
                        let zeros = vec![0; usize::try_from(at.length).unwrap_or(0)];
                        file.write_all_at(&zeros, at.offset)?;
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            file.sync_data()?;
        }
        Ok(())
    }
}

impl Tail {
    fn write_pending(&mut self, dir: &Path) -> io::Result<()> {
        if self.file.is_none() {
            let path = segment_path(dir, self.segment);
            let file = OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path)?;
            // The new name must survive a crash as surely as the bytes written to it.
            File::open(dir)?.sync_all()?;
            self.file = Some(file);
        }
        let file = self.file.as_ref().ok_or_else(|| io::Error::other("the segment is not open"))?;
        let mut slices: Vec<io::IoSlice<'_>> = self.pending.iter().map(|bytes| io::IoSlice::new(bytes)).collect();
        let mut slices = &mut slices[..];
        let mut at = self.written;
        while !slices.is_empty() {
            // At most IOV_MAX (1,024 on Linux) slices a call.
            let wrote = rustix::io::pwritev(file, &slices[..slices.len().min(1024)], at)?;
            if wrote == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            at += wrote as u64;
            io::IoSlice::advance_slices(&mut slices, wrote);
        }
        file.sync_data()?;
        self.written += self.pending_bytes;
        self.pending.clear();
        self.pending_bytes = 0;
        Ok(())
    }

    fn next_segment(&mut self) {
        self.segment += 1;
        self.file = None;
        self.written = 0;
        self.pending.clear();
        self.pending_bytes = 0;
    }
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:012}{SEGMENT_SUFFIX}"))
}

/// The numbers of the segments in `dir`.
fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let number: Option<u64> =
            name.to_str().and_then(|name| name.strip_suffix(SEGMENT_SUFFIX)).and_then(|n| n.parse().ok());
        found.extend(number);
    }
    Ok(found)
}

/// The body at `at` in the log in `dir`, checked against `sha256` (hex), the hash stored
/// with its message. Blocking file I/O: call from a blocking thread.
pub(crate) fn read(dir: &Path, at: PayloadRef, sha256: &str) -> Result<Vec<u8>, StoreError> {
    let path = segment_path(dir, at.segment);
    let lost = |what: String| StoreError::Corrupt(format!("the payload at {}:{}: {what}", path.display(), at.offset));
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(lost("the segment is missing".into())),
        Err(error) => return Err(StoreError::PayloadLog(error)),
    };
    let length = usize::try_from(at.length).map_err(|_| lost(format!("a length of {} bytes", at.length)))?;
    let mut bytes = vec![0; length];
    match file.read_exact_at(&mut bytes, at.offset) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(lost(format!("the segment ends before its {length} bytes")))
        }
        Err(error) => return Err(StoreError::PayloadLog(error)),
    }
    if !is_hash_of(&bytes, sha256) {
        return Err(lost("the bytes do not match the SHA-256 stored with the message".into()));
    }
    Ok(bytes)
}

/// The columns of a message row that say where its body is, for [`StoredBody::of`].
pub(crate) const BODY_COLUMNS: &str = "payload, body_sha256, payload_segment, payload_offset, payload_length";

/// Where a message row says its body is, and the SHA-256 (hex) stored with it.
#[derive(Debug)]
pub(crate) struct StoredBody {
    place: Place,
    pub(crate) sha256: String,
}

#[derive(Debug)]
enum Place {
    /// In the row.
    Inline(Vec<u8>),
    /// In the payload log.
    Logged(PayloadRef),
}

impl StoredBody {
    /// Where it is in the log, if it is there.
    pub(crate) fn place(&self) -> Option<PayloadRef> {
        match self.place {
            Place::Logged(at) => Some(at),
            Place::Inline(_) => None,
        }
    }

    /// From a row with [`BODY_COLUMNS`].
    pub(crate) fn of(row: &impl Cols) -> Result<Self, StoreError> {
        let sha256 = row.text("body_sha256")?;
        let Some(segment) = row.opt_int("payload_segment")? else {
            return Ok(Self { place: Place::Inline(row.bytes("payload")?), sha256 });
        };
        let number = |column: &str, value: Option<i64>| -> Result<u64, StoreError> {
            let value = value.unwrap_or(-1);
            u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("a message's {column} is {value}")))
        };
        let at = PayloadRef {
            segment: number("payload_segment", Some(segment))?,
            offset: number("payload_offset", row.opt_int("payload_offset")?)?,
            length: number("payload_length", row.opt_int("payload_length")?)?,
        };
        Ok(Self { place: Place::Logged(at), sha256 })
    }
}

/// The bytes of `bodies`, in order, each read from the log or taken from its row, and
/// checked against its SHA-256 (whichever the store: what is sent or shown is what was
/// received), on a blocking thread; each may fail alone (a corrupt body, say). `dir` is
/// the store's payload log, if it has one.
pub(crate) async fn load(dir: Option<&Path>, bodies: Vec<StoredBody>) -> Result<Vec<Loaded>, StoreError> {
    let dir = dir.map(Path::to_path_buf);
    blocking(move || {
        let read_one = |body: StoredBody| {
            let bytes = match (body.place, &dir) {
                (Place::Inline(bytes), _) if is_hash_of(&bytes, &body.sha256) => bytes,
                (Place::Inline(_), _) => {
                    return Err(StoreError::Corrupt(
                        "a body in its row does not match the SHA-256 stored with it".into(),
                    ))
                }
                (Place::Logged(at), Some(dir)) => read(dir, at, &body.sha256)?,
                (Place::Logged(_), None) => {
                    return Err(StoreError::Corrupt("a message names a payload log, and this store has none".into()))
                }
            };
            Ok(CheckedPayload { bytes: Bytes::from(bytes), sha256: body.sha256 })
        };
        bodies.into_iter().map(read_one).collect()
    })
    .await
}

/// One body [`load`]ed (with the hash it was checked against), or why it could not be.
pub(crate) type Loaded = Result<CheckedPayload, StoreError>;

/// Whether `sha256` (hex) is the SHA-256 of `bytes`.
fn is_hash_of(bytes: &[u8], sha256: &str) -> bool {
    finhook_core::secret::hex(&Sha256::digest(bytes)) == sha256
}

/// Runs `work` (file I/O) on tokio's blocking pool, off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::PayloadLog(io::Error::other(format!("the payload log's work stopped: {error}"))))
}

#[cfg(test)]
mod tests;
